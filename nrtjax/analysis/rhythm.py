"""Rhythm readouts of an oscillator tapping along: taps, asynchrony, drift, PLV, entrainment.

Definitions (used by every experiment and by the table in docs/ashle.md; all times in seconds):

- **Tap times**: the local maxima of $\\mathrm{Re}\\,z$ of the motor oscillator (Roman et al.
  2023), refined by a parabola through each peak and its neighbours. Only peaks with
  $\\mathrm{Re}\\,z > 0$ count, so the small wiggles of a transient are not taps.
- **Stimulus onsets** of a metronome $e^{i 2\\pi t / T}$: the times $kT$ at which its phase
  is $0 \\bmod 2\\pi$ (where its real part peaks).
- **Asynchrony** of a tap: tap time minus the nearest onset (negative = the tap leads).
  **Mean asynchrony**: the mean over taps at $t \\ge$ `t_min` (the steady state).
- **Inter-tap-interval drift**: the least-squares slope of the inter-tap intervals
  $I_k = t_{k+1} - t_k$ against their index $k$ (seconds per interval; positive = slowing
  down), as in Zamm et al. (2018).
- **PLV to the stimulus**: $|\\langle e^{i(\\phi_z - \\phi_F)}\\rangle_t|$ over a window.
- **Time to entrain**: the first time after which the PLV in a sliding window of `window`
  seconds stays at or above `threshold` until the end; `inf` if it never does.

**References:**

Roman, I. R., Roman, A. S., Kim, J. C. & Large, E. W. (2023). PLOS Comput. Biol. 19(6),
e1011154. Zamm, A., Wang, Y. & Palmer, C. (2018). Musicians' natural frequencies of
performance display optimal temporal stability. J. Biol. Rhythms 33(4), 432-440.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from .beat import peak_times

Times = ArrayLike | Sequence[int | float]


def tap_times(ts: Float[ArrayLike, " time"], z: Complex[ArrayLike, "..."], *,
              min_interval: float = 0.0) -> np.ndarray:
    """Tap times: the peaks of $\\mathrm{Re}\\,z$ with $\\mathrm{Re}\\,z > 0$ (host-side).

    **Arguments:**

    - `ts`: sample times, shape `(time,)`.
    - `z`: the motor oscillator, complex, shape `(time,)`.
    - `min_interval`: smallest allowed interval between taps in seconds (default 0).

    **Returns:** a NumPy array of tap times, increasing.
    """
    z = np.asarray(z)
    if z.ndim != 1:
        raise ValueError(f"tap_times takes one oscillator, shape (time,), got {z.shape}.")
    return peak_times(ts, np.real(z), min_interval=min_interval, height=0.0)


def metronome_onsets(period: float, t_end: float, *, t_start: float = 0.0) -> np.ndarray:
    """Onsets $kT$ of the metronome $e^{i2\\pi t/T}$ in $[t_{start}, t_{end}]$."""
    if not period > 0:
        raise ValueError(f"period must be positive, got {period!r}.")
    k0 = int(np.ceil(t_start / period - 1e-12))
    k1 = int(np.floor(t_end / period + 1e-12))
    return np.arange(k0, k1 + 1) * period


def asynchronies(taps: Times, onsets: Times) -> np.ndarray:
    """Each tap minus its nearest onset, in seconds (negative = the tap leads)."""
    taps = np.asarray(taps, dtype=np.float64).reshape(-1)
    onsets = np.sort(np.asarray(onsets, dtype=np.float64).reshape(-1))
    if onsets.size == 0:
        raise ValueError("asynchronies needs at least one stimulus onset.")
    j = np.clip(np.searchsorted(onsets, taps), 1, max(onsets.size - 1, 1))
    lo = onsets[j - 1]
    hi = onsets[np.minimum(j, onsets.size - 1)]
    nearest = np.where(np.abs(taps - lo) <= np.abs(taps - hi), lo, hi)
    return taps - nearest


def mean_asynchrony(taps: Times, onsets: Times, *, t_min: float = 0.0) -> float:
    """The mean asynchrony (s) of the taps at $t \\ge$ `t_min`; NaN if there are none."""
    taps = np.asarray(taps, dtype=np.float64)
    taps = taps[taps >= t_min]
    if taps.size == 0:
        return float("nan")
    return float(np.mean(asynchronies(taps, onsets)))


def iti_drift(taps: Times, *, max_intervals: int | None = None) -> float:
    """Slope of the inter-tap intervals against their index (s per interval).

    **Arguments:**

    - `taps`: tap times in seconds.
    - `max_intervals`: use only the first this many intervals (e.g. 128, as Roman et al.
        2023 did for Zamm et al. 2018); `None` uses all.

    **Returns:** the least-squares slope; NaN with fewer than 3 intervals.
    """
    iti = np.diff(np.asarray(taps, dtype=np.float64))
    if max_intervals is not None:
        iti = iti[:max_intervals]
    if iti.size < 3:
        return float("nan")
    k = np.arange(iti.size, dtype=np.float64)
    k -= k.mean()
    return float(np.dot(k, iti - iti.mean()) / np.dot(k, k))


def sliding_plv(phase_a: Float[ArrayLike, "*batch_a time"], phase_b: Float[ArrayLike, "*batch_b time"],
                width: int) -> Float[Array, "..."]:
    """PLV in each window of `width` samples ending at samples `width-1, ..., T-1`.

    Batched over leading axes; pure JAX (works under `jit`/`vmap`).
    """
    phase_a, phase_b = jnp.broadcast_arrays(jnp.asarray(phase_a), jnp.asarray(phase_b))
    if width < 1 or width > phase_a.shape[-1]:
        raise ValueError(f"window of {width} samples does not fit {phase_a.shape[-1]} samples.")
    d = phase_a - phase_b
    zero = jnp.zeros(d.shape[:-1] + (1,), dtype=d.dtype)
    c = jnp.concatenate([zero, jnp.cumsum(jnp.cos(d), axis=-1)], axis=-1)
    s = jnp.concatenate([zero, jnp.cumsum(jnp.sin(d), axis=-1)], axis=-1)
    mc = (c[..., width:] - c[..., :-width]) / width
    ms = (s[..., width:] - s[..., :-width]) / width
    return jnp.hypot(mc, ms)


def time_to_entrain(ts: Float[ArrayLike, " time"], phase_a: Float[ArrayLike, "*batch_a time"],
                    phase_b: Float[ArrayLike, "*batch_b time"], *, window: float,
                    threshold: float = 0.95, dt: float | None = None) -> Float[Array, "..."]:
    """The first time after which the sliding PLV stays $\\ge$ `threshold` to the end.

    The time reported is the end of the first window of the final run above threshold
    (the earliest time at which entrainment can be certified). `inf` if the last window
    is below threshold. Batched over leading axes; pure JAX.

    **Arguments:**

    - `ts`: sample times, uniform, shape `(time,)`.
    - `phase_a`, `phase_b`: phases (rad), e.g. `angle(z)` and the stimulus phase.
    - `window`: window length in seconds (e.g. two stimulus periods).
    - `threshold`: PLV level that counts as entrained.
    - `dt`: the sample spacing in seconds; required when `ts` is traced (inside `jit`),
        read from `ts` otherwise.
    """
    ts = jnp.asarray(ts)
    if dt is None:
        if isinstance(ts, jax.core.Tracer):
            raise ValueError("time_to_entrain inside jit needs the sample spacing: pass dt=1/fs.")
        dt = float(ts[1] - ts[0])
    width = max(1, int(round(window / dt)))
    p = sliding_plv(phase_a, phase_b, width)
    below = p < threshold
    n = p.shape[-1]
    idx = jnp.arange(n)
    last_below = jnp.max(jnp.where(below, idx, -1), axis=-1)
    first_ok = last_below + 1
    t_end = ts[width - 1:]
    t = t_end[jnp.clip(first_ok, 0, n - 1)]
    return jnp.where(first_ok < n, t, jnp.inf)


def stimulus_plv(z: Complex[ArrayLike, "*batch_a time"], stimulus: Complex[ArrayLike, "*batch_b time"],
                 *, start: int = 0) -> Float[Array, "..."]:
    """PLV between the phase of `z` and of a complex stimulus, from sample `start` on."""
    z, x = jnp.broadcast_arrays(jnp.asarray(z)[..., start:], jnp.asarray(stimulus)[..., start:])
    d = jnp.angle(z) - jnp.angle(x)
    return jnp.hypot(jnp.mean(jnp.cos(d), axis=-1), jnp.mean(jnp.sin(d), axis=-1))
