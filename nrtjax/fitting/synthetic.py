"""Synthetic tapping subjects from an independent NumPy integration of ASHLE.

Used by the recovery study (`nrtjax fit_recovery`) to make data that the fit has never
seen: the equations of Roman et al. (2023) (docs/ashle.md) are integrated here in plain
NumPy with classical RK4 at a fine step (default 2 kHz, 16 x finer than the fit's 125 Hz)
and the metronome evaluated exactly at every stage. Nothing here calls `nrtjax.simulate`
or `nrtjax.models`, so a bug there cannot hide in both the data and the fit. Taps are the
peaks of $\\mathrm{Re}\\,z$ (the convention of the paper), refined by a parabola through
the three samples around each peak.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import io


def _field(state, F, lambda1, lambda2, f0, gamma):
    d, fd, z, f = state
    ad, az = np.abs(d), np.abs(z)
    ud = np.where(ad > 0, d / np.where(ad > 0, ad, 1.0), 0.0)
    uz = np.where(az > 0, z / np.where(az > 0, az, 1.0), 0.0)
    dd = fd * (d * (1.0 + 2j * np.pi - ad**2) + F)
    dfd = fd * (-lambda1 * np.real(1j * F * np.conj(ud)) - gamma * (np.exp((fd - f) / f) - 1.0))
    dz = f * (z * (1.0 + 2j * np.pi - az**2) + ud)
    df = f * (-lambda1 * np.real(1j * ud * np.conj(uz)) - lambda2 * (np.exp((f - f0) / f0) - 1.0))
    return dd, dfd, dz, df


def reference_ashle(lambda1, lambda2, smt, period, *, duration: float, fs: float = 2000.0,
                    gamma: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ASHLE with RK4 at `fs` for a batch of trials (arguments broadcast).

    **Arguments:**

    - `lambda1`, `lambda2`: the learning rate and elasticity.
    - `smt`: spontaneous motor tempo in seconds ($f_0 = 1/\\text{smt}$).
    - `period`: metronome period in seconds, phase 0 at $t = 0$, $F = e^{i 2\\pi t/T}$;
        NaN for an unpaced trial ($F = 0$).
    - `duration`: seconds; `fs`: steps per second; `gamma`: as in the model.

    **Returns:** `ts` (time,) and `z` (time, *batch), the motor oscillator, from the
    reference state $d = z = 0.01$, $f_d = f = f_0$.
    """
    lambda1, lambda2, smt, period = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (lambda1, lambda2, smt, period)))
    f0 = 1.0 / smt
    n = int(round(duration * fs))
    h = 1.0 / fs
    paced = np.isfinite(period)
    omega = 2 * np.pi / np.where(paced, period, 1.0)
    state = (np.full(period.shape, 0.01 + 0j), f0.copy(), np.full(period.shape, 0.01 + 0j),
             f0.copy())
    zs = np.empty((n + 1,) + period.shape, complex)
    zs[0] = state[2]
    args = (lambda1, lambda2, f0, gamma)

    def force(t):
        return np.where(paced, np.exp(1j * omega * t), 0.0)

    def add(s, k, c):
        return tuple(a + c * b for a, b in zip(s, k))

    for i in range(n):
        t = i * h
        k1 = _field(state, force(t), *args)
        k2 = _field(add(state, k1, h / 2), force(t + h / 2), *args)
        k3 = _field(add(state, k2, h / 2), force(t + h / 2), *args)
        k4 = _field(add(state, k3, h), force(t + h), *args)
        state = tuple(s + h / 6 * (a + 2 * b + 2 * c + e)
                      for s, a, b, c, e in zip(state, k1, k2, k3, k4))
        zs[i + 1] = state[2]
    return np.arange(n + 1) * h, zs


def peaks(ts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Local maxima of the sampled `x`, refined by a parabola through three samples."""
    i = np.flatnonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])) + 1
    a0, a1, a2 = x[i - 1], x[i], x[i + 1]
    curv = a0 - 2 * a1 + a2
    off = np.where(curv < 0, 0.5 * (a0 - a2) / np.where(curv < 0, curv, -1.0), 0.0)
    return ts[i] + off * (ts[1] - ts[0])


def simulate_cohort(subjects: Sequence[dict], *, duration: float, fs: float = 2000.0,
                    seed: int = 0) -> list[dict]:
    """Tap times of synthetic subjects.

    Each subject is a dict with `lambda1`, `lambda2`, `smt_ms`, `periods_ms` (a list),
    `jitter_ms` (sd of Gaussian motor noise added to every tap) and `start_s` (taps before
    it are dropped: 0 keeps the taps from trial start, transient included). Trials are
    integrated together, one batch.

    **Returns:** the subjects, each with `taps` added: one array of tap times (s) per
    period.
    """
    rng = np.random.default_rng(seed)
    l1, l2, smt, per = [], [], [], []
    for s in subjects:
        for p in s["periods_ms"]:
            l1.append(s["lambda1"]), l2.append(s["lambda2"])
            smt.append(s["smt_ms"] / 1e3), per.append(p / 1e3)
    ts, z = reference_ashle(np.array(l1), np.array(l2), np.array(smt), np.array(per),
                            duration=duration, fs=fs)
    out, col = [], 0
    for s in subjects:
        taps = []
        for _ in s["periods_ms"]:
            t = peaks(ts, np.real(z[:, col]))
            col += 1
            t = t + rng.normal(0.0, s["jitter_ms"] / 1e3, t.shape)
            t = np.sort(t[(t >= s["start_s"]) & (t > 0) & (t < duration - 0.05)])
            taps.append(t)
        out.append({**s, "taps": taps})
    return out


def write_taps_csv(path: str | Path, cohort: Sequence[dict]) -> None:
    """Write a cohort from `simulate_cohort` in the `taps` CSV format that
    `nrtjax.fitting.data.read_taps` reads (atomically)."""
    rows = []
    for s in cohort:
        for j, (p, taps) in enumerate(zip(s["periods_ms"], s["taps"])):
            for t in taps:
                rows.append([s["subject"], f"r{j}", f"{s['smt_ms']:.6g}", f"{p:.6g}", f"{t:.6f}"])
    io.write_csv(path, list(("subject", "trial", "smt_ms", "period_ms", "tap_s")), rows)
