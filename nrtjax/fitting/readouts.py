"""Smooth, differentiable tapping readouts of an oscillator's phase.

A tap is the moment the motor oscillator's phase passes $2\\pi k$ (for a constant
amplitude, the peak of $\\mathrm{Re}\\,z$, the convention of Roman et al. 2023). Peak
picking is piecewise constant in the parameters; the readouts here interpolate the
unwrapped phase between integration steps, so they move smoothly with the parameters
and can sit inside a loss that is differentiated.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float, Int


def unwrapped_phase(z: Complex[Array, " time"]) -> Float[Array, " time"]:
    """The continuous phase of `z`: $\\angle z_0 + \\sum_k \\angle(z_{k+1} \\bar z_k)$.

    Differentiable (no branch cut). Valid while the phase advances by less than
    $\\pi$ per sample, i.e. the oscillator is sampled above twice its frequency.
    """
    step = jnp.angle(z[1:] * jnp.conj(z[:-1]))
    return jnp.concatenate([jnp.angle(z[:1]), jnp.angle(z[:1]) + jnp.cumsum(step)])


def peak_phase(ts: Float[Array, " time"], z: Complex[Array, " time"]
               ) -> tuple[Float[Array, " time-1"], Float[Array, " time-1"]]:
    """A phase that passes $2\\pi k$ exactly at the peaks of $\\mathrm{Re}\\,z$, at any
    amplitude.

    $\\mathrm{Re}\\,z$ has a maximum where $\\mathrm{Re}\\,\\dot z$ crosses zero from above, i.e.
    where the velocity $\\dot z$ (turning anticlockwise with the oscillator) points along
    $+i$. So the phase here is the unwrapped angle of the velocity minus $\\pi/2$, with the
    velocity taken as the difference quotient $(z_{k+1} - z_k)/\\Delta t$ at the midpoints
    $(t_k + t_{k+1})/2$ (second-order accurate there). Unlike the angle of $z$ itself it
    stays right while the amplitude grows from the initial state (the first seconds of a
    trial, where the angle of $z$ runs up to 14 ms away from the peaks of ASHLE's
    $\\mathrm{Re}\\,z$); for a constant amplitude the two coincide.

    **Returns:** `(midpoint times, phase)`, one sample shorter than `ts`.
    """
    v = z[1:] - z[:-1]
    return 0.5 * (ts[1:] + ts[:-1]), unwrapped_phase(v) - 0.5 * jnp.pi


def interp(ts: Float[Array, " time"], ys: Float[Array, " time"],
           t: Float[ArrayLike, "*n"]) -> Float[Array, "*n"]:
    """Linear interpolation of `ys` (on the uniform grid `ts`) at times `t`."""
    dt = ts[1] - ts[0]
    u = (jnp.asarray(t) - ts[0]) / dt
    i = jnp.clip(jnp.floor(jax.lax.stop_gradient(u)).astype(jnp.int32), 0, ts.shape[0] - 2)
    w = u - i.astype(u.dtype)
    return ys[i] * (1 - w) + ys[i + 1] * w


def tap_times(ts: Float[Array, " time"], phase: Float[Array, " time"],
              k: Int[ArrayLike, "*n"]) -> Float[Array, "*n"]:
    """The time of the model's `k`-th tap: when the unwrapped `phase` first reaches
    $2\\pi k$, linearly interpolated between the two steps that bracket it.

    $t_k = t_i + \\Delta t\\,(2\\pi k - \\phi_i)/(\\phi_{i+1} - \\phi_i)$, with $i$ the last step
    before the crossing. The step index is held fixed under differentiation (it is
    piecewise constant); the time moves smoothly with $\\phi$. A `k` the run never
    reaches gives the last time, so pass only `k` within the simulated span.

    **Arguments:**

    - `ts`: uniform time grid, shape `(time,)`.
    - `phase`: unwrapped phase on `ts` (e.g. `unwrapped_phase(traj.ys.z)`).
    - `k`: integer tap indices (any shape).

    **Returns:** tap times, the shape of `k`.
    """
    target = 2 * jnp.pi * jnp.asarray(k).astype(phase.dtype)
    ahead = jax.lax.cummax(jax.lax.stop_gradient(phase))
    i = jnp.clip(jnp.searchsorted(ahead, target, side="left") - 1, 0, ts.shape[0] - 2)
    lo, hi = phase[i], phase[i + 1]
    gap = jnp.where(hi > lo, hi - lo, 1.0)
    w = jnp.clip((target - lo) / gap, 0.0, 1.0)
    return ts[i] + w * (ts[i + 1] - ts[i])


def nearest_tap(ts: Float[Array, " time"], phase: Float[Array, " time"],
                t: Float[ArrayLike, "*n"]) -> Float[Array, "*n"]:
    """For each observed tap time `t`, the model tap closest in phase: the index
    $k = \\mathrm{round}(\\phi(t)/2\\pi)$ (held fixed) and its time `tap_times(k)`.
    Missing or extra taps in the data therefore do not shift the pairing, and a tap in
    the first cycle of a trial (k = 0) is paired with the model's first tap."""
    k = jnp.round(jax.lax.stop_gradient(interp(ts, phase, t)) / (2 * jnp.pi))
    return tap_times(ts, phase, jnp.maximum(k, 0).astype(jnp.int32))


def asynchrony(ts: Float[Array, " time"], z: Complex[Array, " time"],
               stimulus: Complex[Array, " time"], period: Float[ArrayLike, ""], *,
               window: float) -> Float[Array, ""]:
    """Steady-state asynchrony (tap minus beat) in the units of `period`.

    The circular mean of the phase lag of the motor oscillator behind the stimulus over
    the final `window` seconds, $\\bar\\phi = \\angle \\frac1N\\sum e^{i(\\angle F - \\angle z)}$,
    converted to time, $\\bar\\phi\\,T/2\\pi$. Positive: the taps come after the beats.

    **Arguments:**

    - `ts`, `z`, `stimulus`: the grid, the motor oscillator and the complex stimulus
        $F(t) = e^{i 2\\pi t/T}$ on it.
    - `period`: the metronome period $T$ (seconds or ms; the result has its units).
    - `window`: averaging window at the end of the run, seconds (a Python number).
    """
    keep = ts >= ts[-1] - window
    lag = stimulus * jnp.conj(z) / jnp.maximum(jnp.abs(stimulus * z), 1e-30)
    mean = jnp.sum(jnp.where(keep, lag, 0)) / jnp.sum(keep)
    return jnp.angle(mean) * period / (2 * jnp.pi)


def motor_ioi(ts: Float[Array, " time"], phase: Float[Array, " time"],
              t: Float[ArrayLike, "*n"]) -> Float[Array, "*n"]:
    """The inter-onset interval the motor oscillator produces around time `t`:
    $2\\pi / \\dot\\phi$, with $\\dot\\phi$ the phase advance over one step (its
    instantaneous frequency), linearly interpolated. Seconds."""
    rate = jnp.diff(phase) / jnp.diff(ts)
    mid = 0.5 * (ts[1:] + ts[:-1])
    return 2 * jnp.pi / interp(mid, rate, t)


def ioi_drift(ts: Float[Array, " time"], phase: Float[Array, " time"], *,
              start: float, stop: float) -> Float[Array, ""]:
    """Tempo drift over $[\\text{start}, \\text{stop}]$: the change in the motor's
    inter-onset interval, `motor_ioi(stop) - motor_ioi(start)` (seconds; positive =
    slowing down, as in continuation tapping after the metronome stops)."""
    return motor_ioi(ts, phase, jnp.asarray(stop)) - motor_ioi(ts, phase, jnp.asarray(start))
