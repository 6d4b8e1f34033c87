"""An independent NumPy reference of ASHLE (Roman et al. 2023) with forward Euler,
for the fitting tests: written from the equations, not from nrtjax's code path."""

import numpy as np


def simulate_ashle(lambda1, lambda2, f0, periods, *, duration, fs=500.0, gamma=0.02,
                   stop=None):
    """Euler-integrate ASHLE for a batch of trials (all arguments broadcast together).

    `periods` in seconds (NaN = no metronome); the metronome F = exp(i 2 pi t / T) plays
    until `stop` seconds (None = whole trial). Returns ts (time,) and z (time, *batch).
    """
    lambda1, lambda2, f0, periods = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (lambda1, lambda2, f0, periods)))
    n = int(round(duration * fs))
    dt = 1.0 / fs
    d = np.full(periods.shape, 0.01 + 0j)
    z = d.copy()
    fd = f0.copy()
    f = f0.copy()
    paced = np.isfinite(periods)
    per = np.where(paced, periods, 1.0)
    zs = np.empty((n + 1,) + periods.shape, complex)
    zs[0] = z
    for k in range(n):
        t = k * dt
        on = paced & (stop is None or t < stop)
        F = np.where(on, np.exp(2j * np.pi * t / per), 0.0)
        ud = d / np.abs(d)
        uz = z / np.abs(z)
        dd = fd * (d * (1.0 + 2j * np.pi - np.abs(d) ** 2) + F)
        dfd = fd * (-lambda1 * np.real(1j * F * np.conj(ud)) - gamma * (np.exp((fd - f) / f) - 1))
        dz = f * (z * (1.0 + 2j * np.pi - np.abs(z) ** 2) + ud)
        df = f * (-lambda1 * np.real(1j * ud * np.conj(uz)) - lambda2 * (np.exp((f - f0) / f0) - 1))
        d, fd, z, f = d + dt * dd, fd + dt * dfd, z + dt * dz, f + dt * df
        zs[k + 1] = z
    return np.arange(n + 1) * dt, zs


def peak_taps(ts, x):
    """Taps as the local maxima of Re z, refined by a parabola (a plain NumPy peak picker)."""
    i = np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])) + 1
    a0, a1, a2 = x[i - 1], x[i], x[i + 1]
    off = 0.5 * (a0 - a2) / (a0 - 2 * a1 + a2)
    return ts[i] + off * (ts[1] - ts[0])


def phase_taps(ts, z):
    """Taps as the times the unwrapped phase of z passes 2 pi k (k >= 1), linearly
    interpolated: the tap definition of the smooth readout, computed in plain NumPy."""
    u = np.unwrap(np.angle(z))
    k = np.arange(1, int(np.floor(u.max() / (2 * np.pi))) + 1)
    i = np.searchsorted(np.maximum.accumulate(u), 2 * np.pi * k) - 1
    w = (2 * np.pi * k - u[i]) / (u[i + 1] - u[i])
    return ts[i] + w * (ts[i + 1] - ts[i])
