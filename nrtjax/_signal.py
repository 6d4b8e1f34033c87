"""`Signal`: a sampled input read by linear interpolation, and stimulus builders;
`HeldInput`: one sample held over a solver step (a zero-order hold)."""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, Shaped

from ._custom_types import Real, RealScalarLike
from ._dtypes import default_float


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_times(ts: np.ndarray) -> float | None:
    """Validate concrete sample times; return the spacing if the grid is uniform."""
    if ts.ndim != 1:
        raise ValueError(f"Signal times must be one-dimensional, got shape {ts.shape}.")
    if ts.shape[0] < 2:
        raise ValueError(
            f"A Signal needs at least 2 samples to interpolate, got {ts.shape[0]}. "
            "Pass a longer input (duration * fs >= 1)."
        )
    if not np.all(np.isfinite(ts)):
        bad = int(np.flatnonzero(~np.isfinite(ts))[0])
        raise ValueError(f"Signal times contain NaN or inf (first at index {bad}).")
    steps = np.diff(ts)
    if np.any(steps <= 0):
        bad = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(
            "Signal times must be strictly increasing: "
            f"ts[{bad}]={ts[bad]!r} >= ts[{bad + 1}]={ts[bad + 1]!r}. Sort the samples "
            "or drop duplicated times."
        )
    dt = float(steps.mean())
    if np.allclose(steps, dt, rtol=1e-7, atol=0.0):
        return dt
    return None


class Signal(eqx.Module):
    """A sampled input $x(t)$, read by linear interpolation between samples.

    Outside $[t_0, t_1]$ the end samples are held. On a uniform grid the lookup is
    O(1) (an index computed from the time), otherwise a binary search. With an RK4 step
    equal to the sample spacing, the half-step value is the mean of two neighbouring
    samples, which is the MATLAB GrFNN Toolbox convention (`odeRK4fs.m`).
    """

    ts: Float[Array, " time"]
    xs: Inexact[Array, " time *channels"]
    t0: float = eqx.field(static=True)
    t1: float = eqx.field(static=True)
    dt: float | None = eqx.field(static=True)

    def __init__(self, ts: Float[ArrayLike, " times"], xs: Shaped[ArrayLike, " samples *channels"]):
        """**Arguments:**

        - `ts`: sample times, shape `(time,)`, strictly increasing and finite. Must be
            concrete (not traced): build Signals outside `jit`, or use
            [`nrtjax.Signal.sampled`][] which needs only the values to be arrays.
        - `xs`: sample values, real or complex, shape `(time,)` or `(time, channels)`.

        **Raises:**

        `ValueError` for traced or invalid times, mismatched lengths, empty input, or
        NaN/inf values.
        """
        if _is_traced(ts):
            raise ValueError(
                "Signal times must be concrete to fix the integration grid. Build the "
                "Signal outside jit, or use nrt.Signal.sampled(xs, fs, t0) inside it."
            )
        ts_np = np.asarray(ts, dtype=np.float64)
        self.dt = _check_times(ts_np)
        self.t0 = float(ts_np[0])
        self.t1 = float(ts_np[-1])
        self.ts = jnp.asarray(ts_np, dtype=default_float())
        xs = jnp.asarray(xs)
        if xs.ndim not in (1, 2):
            raise ValueError(
                f"Signal values must have shape (time,) or (time, channels), got {xs.shape}."
            )
        if xs.shape[0] != ts_np.shape[0]:
            raise ValueError(
                f"Signal has {ts_np.shape[0]} times but {xs.shape[0]} values; pass one "
                "value (row) per sample time."
            )
        if not jnp.issubdtype(xs.dtype, jnp.inexact):
            xs = xs.astype(default_float())
        if _is_traced(xs):
            xs = eqx.error_if(
                xs,
                ~jnp.all(jnp.isfinite(xs)),
                "Signal values contain NaN or inf; clean the input before simulating.",
            )
        else:
            finite = np.isfinite(np.asarray(xs))
            if not finite.all():
                bad = int(np.flatnonzero(~finite.reshape(finite.shape[0], -1).all(-1))[0])
                raise ValueError(
                    f"Signal values contain NaN or inf (first at sample {bad}, "
                    f"t={ts_np[bad]:.6g} s). Clean or interpolate the input first."
                )
        self.xs = xs

    @classmethod
    def sampled(
        cls, xs: Shaped[ArrayLike, " time *channels"], fs: Real, t0: Real = 0.0
    ) -> "Signal":
        """A Signal on the uniform grid `t0 + k / fs`; `xs` may be traced.

        **Arguments:**

        - `xs`: values, shape `(time,)` or `(time, channels)`.
        - `fs`: sampling rate in Hz (a Python number).
        - `t0`: time of the first sample in seconds.
        """
        if not fs > 0 or not math.isfinite(fs):
            raise ValueError(f"Sampling rate fs must be a positive finite number, got {fs!r}.")
        n = jnp.shape(xs)[0]
        return cls(t0 + np.arange(n) / float(fs), xs)

    @property
    def fs(self) -> float:
        """Sampling rate in Hz (uniform grids only)."""
        if self.dt is None:
            raise ValueError("This Signal is not uniformly sampled; it has no single fs.")
        return 1.0 / self.dt

    @property
    def duration(self) -> float:
        return self.t1 - self.t0

    def evaluate(self, t: RealScalarLike) -> Inexact[Array, "*channels"]:
        """The linearly interpolated value at time `t` (end samples held outside)."""
        n = self.ts.shape[0]
        if self.dt is None:
            t = jnp.asarray(t, dtype=self.ts.dtype)
            i = jnp.clip(jnp.searchsorted(self.ts, t, side="right") - 1, 0, n - 2)
            w = (t - self.ts[i]) / (self.ts[i + 1] - self.ts[i])
        else:
            u = (jnp.asarray(t, dtype=self.ts.dtype) - self.t0) / self.dt
            i = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, n - 2)
            w = u - i.astype(u.dtype)
        w = jnp.clip(w, 0.0, 1.0).astype(self.xs.dtype)
        return self.xs[i] * (1 - w) + self.xs[i + 1] * w


class HeldInput(eqx.Module):
    """One sample of an input, held over a solver step: what a model receives as `args`
    under a zero-order hold (`nrtjax.simulate(..., input_hold="zero")`). It reads like a
    [`nrtjax.Signal`][]: `evaluate(t)` is `value` at every `t`."""

    value: Inexact[Array, "*channels"]

    def evaluate(self, t: RealScalarLike) -> Inexact[Array, "*channels"]:
        """The held sample, whatever `t`."""
        del t
        return self.value


def _grid(duration: Real, fs: Real) -> np.ndarray:
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}.")
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"fs must be a positive sampling rate in Hz, got {fs!r}.")
    n = int(round(duration * fs)) + 1
    return np.arange(n) / float(fs)


def metronome(
    tempo_hz: RealScalarLike, duration: Real, fs: Real, amplitude: RealScalarLike = 1.0
) -> Signal:
    """A complex metronome $F(t) = A e^{i 2\\pi f t}$ sampled at `fs` on $[0, T]$.

    **Arguments:**

    - `tempo_hz`: beat rate $f$ in Hz (may be traced, e.g. in a vmapped sweep).
    - `duration`: $T$ in seconds; `fs`: sampling rate in Hz (Python numbers).
    - `amplitude`: $A$.
    """
    ts = _grid(duration, fs)
    t = jnp.asarray(ts, dtype=default_float())
    phase = 2 * jnp.pi * jnp.asarray(tempo_hz, dtype=t.dtype) * t
    amp = jnp.asarray(amplitude, dtype=t.dtype)
    # Explicit real -> complex cast: strict dtype promotion allows no implicit one.
    xs = jax.lax.complex(amp * jnp.cos(phase), amp * jnp.sin(phase))
    return Signal(ts, xs)


def silence(duration: Real, fs: Real) -> Signal:
    """A zero input on $[0, T]$, for autonomous runs (spontaneous oscillation, Lorenz)."""
    ts = _grid(duration, fs)
    return Signal(ts, np.zeros_like(ts))


def pulse_train(
    onsets: Sequence[Real] | Float[ArrayLike, " onsets"],
    duration: float,
    fs: float,
    *,
    velocities: Sequence[Real] | Float[ArrayLike, " onsets"] | None = None,
    tau: Real = 0.03,
) -> Signal:
    """A real pulse train $x(t) = \\sum_k v_k e^{-(t - t_k)/\\tau}$ for $t \\ge t_k$.

    Each onset decays exponentially (a 30 ms decay by default, as in the seed study's
    onset envelope). Overlapping pulses add.

    **Arguments:**

    - `onsets`: onset times in seconds (any order; outside $[0, T]$ they are ignored).
    - `duration`, `fs`: length in seconds and sampling rate in Hz.
    - `velocities`: pulse heights in $[0, 1]$, default 1.
    - `tau`: decay time constant in seconds.
    """
    ts = _grid(duration, fs)
    onsets = np.asarray(onsets, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(onsets)):
        raise ValueError("Onset times contain NaN or inf.")
    v = np.ones_like(onsets) if velocities is None else np.asarray(velocities, np.float64)
    if v.shape != onsets.shape:
        raise ValueError(f"{onsets.size} onsets but {v.size} velocities; give one per onset.")
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau!r}.")
    lag = ts[:, None] - onsets[None, :]
    xs = np.where(lag >= 0, v[None, :] * np.exp(-np.maximum(lag, 0.0) / tau), 0.0).sum(-1)
    return Signal(ts, xs)


def click_train(
    tempo_hz: Real, duration: Real, fs: Real, *, phase_s: Real = 0.0, tau: Real = 0.03
) -> Signal:
    """An isochronous pulse train at `tempo_hz` (onsets at `phase_s + k / tempo_hz`)."""
    if not tempo_hz > 0:
        raise ValueError(f"tempo_hz must be positive, got {tempo_hz!r}.")
    onsets = np.arange(phase_s, duration + 1e-12, 1.0 / tempo_hz)
    return pulse_train(onsets, duration, fs, tau=tau)
