"""Residuals of ASHLE against tapping data (tap times, summary asynchronies).

Each residual function maps `(model, data)` for ONE subject to `(r, w)`: residuals in
milliseconds and their weights (0 for padding). [`nrtjax.fitting`][] minimises
$\\sum w r^2 / \\sum w$ and vmaps it over subjects.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Complex, Float

from .._signal import Signal
from .._simulate import simulate
from ..models.ashle import ASHLE, ASHLEState
from .._solvers import RK4
from .readouts import asynchrony, motor_ioi, nearest_tap, peak_phase, unwrapped_phase


class TapData(eqx.Module):
    """One subject's tap times (a leading subject axis makes it a cohort).

    - `smt`: spontaneous motor tempo (SMT), seconds; the model's $f_0 = 1/\\text{smt}$.
    - `period`: metronome period per trial, seconds; NaN for an unpaced trial.
    - `taps`: tap times in seconds from the metronome's start, `(trials, taps)`, padded.
    - `mask`: True for real taps.
    """

    smt: Float[Array, "*s"]
    period: Float[Array, "*s trials"]
    taps: Float[Array, "*s trials taps"]
    mask: Bool[Array, "*s trials taps"]


class SummaryData(eqx.Module):
    """One subject's steady-state asynchronies relative to the SMT condition.

    - `smt`: SMT in seconds; `ratio`: metronome period / SMT per condition;
    - `asynchrony`: tap minus beat in ms, relative to the period = SMT condition;
    - `mask`: True for real conditions (padding is False).
    """

    smt: Float[Array, "*s"]
    ratio: Float[Array, "*s conditions"]
    asynchrony: Float[Array, "*s conditions"]
    mask: Bool[Array, "*s conditions"]


def trial_stimulus(period: Float[Array, ""], duration: float, fs: float) -> Complex[Array, " time"]:
    """The metronome $F(t) = e^{i 2\\pi t/T}$ on $[0, \\text{duration}]$ (phase 0 at
    $t = 0$), or zero input where `period` is NaN (unpaced tapping)."""
    t = jnp.asarray(np.arange(int(round(duration * fs)) + 1) / fs, dtype=period.dtype)
    paced = jnp.isfinite(period)
    phase = 2 * jnp.pi * t / jnp.where(paced, period, 1.0)
    f = jax.lax.complex(jnp.cos(phase), jnp.sin(phase))
    return jnp.where(paced, f, jnp.zeros_like(f))


def simulate_trial(model: ASHLE, period: Float[Array, ""], *, duration: float, fs: float = 500.0,
                   adjoint: diffrax.AbstractAdjoint | None = None,
                   solver: diffrax.AbstractSolver | None = None,
                   ) -> tuple[Float[Array, " time"], ASHLEState, Complex[Array, " time"]]:
    """ASHLE through one trial from the reference initial state, `fs` steps per second.

    The default `solver` is forward Euler, the reference protocol (500 Hz in Roman et al.
    2023). The metronome is sampled at `2 fs`, so that a solver with half-step stages
    (`nrt.RK4`) reads it exactly there rather than interpolated.

    **Returns:** `(ts, ys, stimulus)` on the grid of step `1/fs`. Runs with `throw=False`
    (it is meant for vmap).
    """
    x = trial_stimulus(period, duration, 2 * fs)
    solver = diffrax.Euler() if solver is None else solver
    traj = simulate(model, Signal.sampled(x, 2 * fs), dt=1.0 / fs, solver=solver,
                    adjoint=adjoint, throw=False)
    return traj.ts, traj.ys, x[::2]


class TapResiduals(eqx.Module):
    """Residuals of model taps against observed taps, in ms.

    Paced trials: each observed tap minus the nearest model tap
    ([`nrtjax.fitting.readouts.nearest_tap`][], the first cycle included). Unpaced trials
    (period NaN): each observed inter-onset interval minus the motor's IOI at its
    midpoint ([`nrtjax.fitting.readouts.motor_ioi`][]), since an unpaced trial has no common
    time origin. Every trial is simulated for `duration` seconds with `fs` steps per
    second of `solver`.

    A model tap is a peak of $\\mathrm{Re}\\,z$ (`readout="peak"`, the definition of
    Roman et al. 2023, read smoothly by
    [`nrtjax.fitting.readouts.peak_phase`][]) or the angle of $z$ passing $2\\pi k$
    (`readout="phase"`). They agree once the amplitude has settled; in the first seconds
    of a trial only `"peak"` matches taps defined as peaks.

    The defaults (classical RK4 at 250 steps per second, peak read-out) put the model's
    taps within 0.01 ms of an RK4 integration at 2 kHz, transient included; forward
    Euler at 500 Hz is 4-7 ms off during the transient, which is where $\\lambda_1$ (the
    speed of adaptation) shows.
    """

    duration: float = eqx.field(static=True)
    fs: float = eqx.field(static=True, default=250.0)
    adjoint: diffrax.AbstractAdjoint | None = None
    solver: diffrax.AbstractSolver = RK4()
    readout: str = eqx.field(static=True, default="peak")

    def __check_init__(self):
        if self.readout not in ("peak", "phase"):
            raise ValueError(f"readout={self.readout!r}: choose 'peak' or 'phase'.")

    def __call__(self, model: ASHLE, data: TapData) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
        model = eqx.tree_at(lambda m: m.f0, model, (1.0 / data.smt).astype(model.f0.dtype))
        r, w = jax.vmap(lambda p, t, m: self._trial(model, p, t, m))(
            data.period, data.taps, data.mask)
        return r.reshape(-1), w.reshape(-1)

    def model_phase(self, model: ASHLE, period: Float[Array, ""]
                    ) -> tuple[Float[Array, " time"], Float[Array, " time"]]:
        """The model's tap phase (passes $2\\pi k$ at its k-th tap) on its time grid."""
        ts, ys, _ = simulate_trial(model, period, duration=self.duration, fs=self.fs,
                                   adjoint=self.adjoint, solver=self.solver)
        if self.readout == "peak":
            return peak_phase(ts, ys.z)
        return ts, unwrapped_phase(ys.z)

    def _trial(self, model, period, taps, mask):
        ts, phase = self.model_phase(model, period)
        safe = jnp.where(mask, taps, 0.5 * self.duration)
        paced = jnp.isfinite(period)
        r_paced = 1e3 * (safe - nearest_tap(ts, phase, safe))
        mid = 0.5 * (safe[1:] + safe[:-1])
        r_ioi = 1e3 * (jnp.diff(safe) - motor_ioi(ts, phase, mid))
        r_ioi = jnp.concatenate([r_ioi, jnp.zeros_like(r_ioi[:1])])
        w_ioi = jnp.concatenate([mask[1:] & mask[:-1], jnp.zeros_like(mask[:1])])
        r = jnp.where(paced, r_paced, r_ioi)
        w = jnp.where(paced, mask, w_ioi).astype(r.dtype)
        return jnp.where(w > 0, r, 0.0), w


class SummaryResiduals(eqx.Module):
    """Residuals of model against observed steady-state asynchronies, in ms.

    For each condition the model runs `duration` seconds with period `ratio * smt`
    (`fs` steps per second of `solver`, default forward Euler);
    its asynchrony ([`nrtjax.fitting.readouts.asynchrony`][] over the last `window` seconds)
    minus that of the period = SMT condition is compared with the data, which are
    relative to the SMT condition too.

    In ASHLE's 1:1 steady state $f' = 0$ gives
    $\\lambda_1 \\sin(\\angle d - \\angle z) = \\lambda_2 (e^{(f - f_0)/f_0} - 1)$, so the
    motor's lag depends on $\\lambda_1, \\lambda_2$ through $\\lambda_2/\\lambda_1$ (and
    $\\gamma/\\lambda_1$ through the sensory oscillator's much smaller lag): asynchronies
    alone identify the ratio, not the pair.
    """

    duration: float = eqx.field(static=True)
    window: float = eqx.field(static=True)
    fs: float = eqx.field(static=True)
    adjoint: diffrax.AbstractAdjoint | None = None
    solver: diffrax.AbstractSolver | None = None

    def __call__(self, model: ASHLE, data: SummaryData) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
        model = eqx.tree_at(lambda m: m.f0, model, (1.0 / data.smt).astype(model.f0.dtype))
        ratios = jnp.concatenate([jnp.ones_like(data.ratio[:1]), data.ratio])
        lags = jax.vmap(lambda r: self._lag(model, r * data.smt))(ratios)
        r = 1e3 * (lags[1:] - lags[0]) - data.asynchrony
        w = data.mask.astype(r.dtype)
        return jnp.where(data.mask, r, 0.0), w

    def _lag(self, model, period):
        ts, ys, x = simulate_trial(model, period, duration=self.duration, fs=self.fs,
                                   adjoint=self.adjoint, solver=self.solver)
        return asynchrony(ts, ys.z, x, period, window=self.window)
