"""Beat readouts: the resonance peak of an amplitude profile, and event times from phase."""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float


def resonance_peak(
    freqs: Float[ArrayLike, " n"], amplitude: Float[ArrayLike, "*batch n"]
) -> Float[Array, "*batch"]:
    """The frequency of the amplitude profile's peak, interpolated between oscillators.

    A parabola through the largest value and its two neighbours on a log-frequency axis
    (the grid of a log-spaced GrFNN); at the edges of the grid the grid value is returned.
    Differentiable almost everywhere and batched over leading axes.
    """
    logf = jnp.log(jnp.asarray(freqs))
    amp = jnp.asarray(amplitude)
    n = logf.shape[0]
    k = jnp.clip(jnp.argmax(amp, axis=-1), 1, n - 2)
    def take(j):
        return jnp.take_along_axis(amp, j[..., None], axis=-1)[..., 0]
    a0, a1, a2 = take(k - 1), take(k), take(k + 1)
    denom = a0 - 2 * a1 + a2
    offset = jnp.where(jnp.abs(denom) > 0, 0.5 * (a0 - a2) / jnp.where(denom == 0, 1, denom), 0)
    offset = jnp.clip(offset, -1.0, 1.0)
    step = logf[k + 1] - logf[k]
    step_lo = logf[k] - logf[k - 1]
    peak = logf[k] + jnp.where(offset >= 0, offset * step, offset * step_lo)
    kmax = jnp.argmax(amp, axis=-1)
    at_edge = (kmax == 0) | (kmax == n - 1)
    return jnp.exp(jnp.where(at_edge, logf[kmax], peak))


def phase_crossings(
    ts: Float[ArrayLike, " time"], phase: Float[ArrayLike, " time"], offset: float = 0.0
) -> np.ndarray:
    """Times at which the unwrapped `phase` passes `offset + 2 pi k`, linearly interpolated.

    This is the beat (or tap) clock of an oscillator: with `phase = angle(z)` and
    `offset = 0` these are the times at which $z$ crosses the positive real axis, i.e.
    the peaks of $\\mathrm{Re}\\,z$ for a constant amplitude. Host-side (NumPy).
    """
    ts = np.asarray(ts, dtype=np.float64)
    u = np.unwrap(np.asarray(phase, dtype=np.float64)) - offset
    cycles = np.floor(u / (2 * np.pi))
    idx = np.flatnonzero(np.diff(cycles) > 0)
    target = (cycles[idx + 1]) * 2 * np.pi
    w = (target - u[idx]) / (u[idx + 1] - u[idx])
    return ts[idx] + w * (ts[idx + 1] - ts[idx])


def peak_times(ts: Float[ArrayLike, " time"], x: Float[ArrayLike, " time"], *,
               min_interval: float = 0.0, height: float | None = None) -> np.ndarray:
    """Times of the local maxima of a real signal (e.g. taps = peaks of Re z), refined by
    a parabola through each peak and its neighbours. Host-side (SciPy)."""
    import scipy.signal

    ts = np.asarray(ts, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    dt = float(np.median(np.diff(ts)))
    distance = max(1, int(round(min_interval / dt))) if min_interval > 0 else None
    idx, _ = scipy.signal.find_peaks(x, height=height, distance=distance)
    idx = idx[(idx > 0) & (idx < x.shape[0] - 1)]
    a0, a1, a2 = x[idx - 1], x[idx], x[idx + 1]
    denom = a0 - 2 * a1 + a2
    off = np.where(denom != 0, 0.5 * (a0 - a2) / np.where(denom == 0, 1, denom), 0.0)
    return ts[idx] + off * dt
