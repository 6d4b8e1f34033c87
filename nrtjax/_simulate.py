"""`simulate`: integrate a model driven by a Signal, on `diffrax.diffeqsolve`."""

import math
from collections.abc import Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree

from ._compile import filter_jit_tuned
from ._fixed_step import elementwise_ok, scan_elementwise, scan_fixed
from ._signal import Signal
from ._solvers import RK4, ZeroHold
from .models._base import AbstractModel, static_zero_names, with_static_zeros


class SimulationDivergedError(ValueError):
    """A state left the model's domain (non-finite, or $\\varepsilon|z|^2 \\ge 1$)."""


class Trajectory(eqx.Module):
    """The output of [`nrtjax.simulate`][].

    **Fields:**

    - `ts`: output times, shape `(time,)`.
    - `ys`: states at `ts`, in the model's state structure with a leading time axis.
    - `result`: a `diffrax.RESULTS`; `RESULTS.successful` unless the solve failed.
        A diverging state is flagged as `RESULTS.nonfinite`.
    """

    ts: Float[Array, " time"]
    ys: PyTree[Array]
    result: diffrax.RESULTS

    @property
    def ok(self) -> Array:
        """True where the solve succeeded (batched under vmap)."""
        return self.result == diffrax.RESULTS.successful


def _num_steps(signal: Signal, dt: float) -> int:
    if not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive Python number of seconds, got {dt!r}.")
    span = signal.t1 - signal.t0
    n = int(round(span / dt))
    if n < 1 or abs(n * dt - span) > 1e-6 * max(dt, span):
        raise ValueError(
            f"dt={dt} does not divide the signal's span [{signal.t0}, {signal.t1}] into whole "
            f"steps ({span / dt:.6g}). Choose dt = span / k, e.g. the sample spacing."
        )
    return n


def _check_zero_hold(signal: Signal, dt: float, stepsize_controller, adjoint) -> None:
    if stepsize_controller is not None:
        raise ValueError("input_hold='zero' holds each sample over one fixed step, so it takes "
                         "no stepsize_controller. Drop it, or use input_hold='linear' for an "
                         "adaptive solve.")
    if signal.dt is None:
        raise ValueError("input_hold='zero' holds sample k over step k and needs a uniformly "
                         "sampled signal. Resample the input onto a uniform grid.")
    if abs(dt - signal.dt) > 1e-6 * signal.dt:
        raise ValueError(f"input_hold='zero' holds sample k over step k, so dt must be the "
                         f"signal's sample spacing {signal.dt:.6g} s, got dt={dt}. Pass "
                         "dt=signal.dt (to hold over finer steps, repeat each sample: np.repeat).")
    if isinstance(adjoint, diffrax.BacksolveAdjoint):
        raise ValueError("input_hold='zero' holds each sample over a forward step, which "
                         "diffrax.BacksolveAdjoint's backward solve does not follow. Use the "
                         "default adjoint or diffrax.RecursiveCheckpointAdjoint().")


def _initial_state(model: AbstractModel, y0):
    default = model.initial_state()
    if y0 is None:
        return default
    leaves = jtu.tree_leaves(y0)
    if len(leaves) == 1 and jnp.ndim(leaves[0]) == 0 and len(jtu.tree_leaves(default)) >= 1:
        if jtu.tree_structure(y0) == jtu.tree_structure(0.0):
            return jtu.tree_map(lambda d: jnp.full_like(d, y0), default)
    if jtu.tree_structure(y0) != jtu.tree_structure(default):
        raise ValueError(
            f"y0 has structure {jtu.tree_structure(y0)} but {type(model).__name__} expects "
            f"{jtu.tree_structure(default)}."
        )
    return jtu.tree_map(lambda a, d: jnp.broadcast_to(jnp.asarray(a, dtype=d.dtype), d.shape), y0, default)


class _RealView(eqx.Module):
    """A model seen through an all-real state: each complex leaf as a trailing (re, im) axis.

    Diffrax's Runge-Kutta solvers build one tableau dtype from all state leaves, so a
    state that mixes real and complex leaves (ASHLE's (d, f_d, z, f)) would turn its real
    leaves complex; the real view keeps every solver usable and is exact (complex
    addition and scaling by real step sizes act componentwise).
    """

    model: AbstractModel
    mask: tuple[bool, ...] = eqx.field(static=True)

    def __call__(self, t, y, args):
        return _to_real(self.model(t, _from_real(y, self.mask), args))


def _complex_mask(y) -> tuple[bool, ...]:
    return tuple(bool(jnp.iscomplexobj(leaf)) for leaf in jtu.tree_leaves(y))


def _to_real(y):
    return jtu.tree_map(
        lambda a: jnp.stack([jnp.real(a), jnp.imag(a)], axis=-1) if jnp.iscomplexobj(a) else a, y)


def _from_real(y, mask: tuple[bool, ...]):
    leaves, treedef = jtu.tree_flatten(y)
    out = [jax.lax.complex(a[..., 0], a[..., 1]) if m else a for a, m in zip(leaves, mask)]
    return jtu.tree_unflatten(treedef, out)


def _all_finite(y) -> Array:
    """True where every entry of the state `y` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jtu.tree_leaves(y)]))


@eqx.filter_jit
def _first_bad(ys) -> Array:
    """Index of the first saved state that is non-finite (or -1)."""
    bad = None
    for leaf in jtu.tree_leaves(ys):
        b = ~jnp.all(jnp.isfinite(leaf).reshape(leaf.shape[0], -1), axis=1)
        bad = b if bad is None else bad | b
    return jnp.where(jnp.any(bad), jnp.argmax(bad), -1)


def _strided_indices(saveat, t0: float, dt: float, n: int) -> tuple[int, int, int] | None:
    """`(k0, stride, count)` if the save times are grid points `t0 + k dt` at a constant
    stride (the fast path can serve them), else None."""
    if isinstance(saveat, jax.core.Tracer):
        return None
    times = np.atleast_1d(np.asarray(saveat, dtype=np.float64))
    k = np.round((times - t0) / dt).astype(np.int64)
    if times.size == 0 or np.any(np.abs(t0 + k * dt - times) > 1e-9 * max(1.0, abs(t0) + n * dt)):
        return None
    if k[0] < 0 or k[-1] > n or np.any(np.diff(k) <= 0):
        raise ValueError(f"saveat must be increasing times inside [{t0}, {t0 + n * dt}].")
    strides = np.diff(k)
    if strides.size and np.any(strides != strides[0]):
        return None
    return int(k[0]), int(strides[0]) if strides.size else 1, int(k.size)


@filter_jit_tuned
def _diffeqsolve(model, signal, y0, solver, controller, save_ts, grid, adjoint, max_steps, dt0):
    term = diffrax.ODETerm(model)
    if save_ts is None:
        saveat = diffrax.SaveAt(t0=True, steps=True)
    else:
        saveat = diffrax.SaveAt(ts=save_ts)
    sol = diffrax.diffeqsolve(
        term, solver, grid[0], grid[-1], dt0, y0, args=signal, saveat=saveat,
        stepsize_controller=controller, adjoint=adjoint, max_steps=max_steps, throw=False,
    )
    return sol.ts, sol.ys, sol.result


def simulate(
    model: AbstractModel,
    signal: Signal,
    *,
    dt: float,
    solver: diffrax.AbstractSolver = RK4(),
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    y0=None,
    saveat: Sequence[float] | Float[ArrayLike, " save"] | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    max_steps: int | None = None,
    throw: bool = True,
    input_hold: str = "linear",
) -> Trajectory:
    """Integrate `model` driven by `signal` over the signal's time span.

    Fixed-step solves (no `stepsize_controller`) step exactly on the grid
    $t_k = t_0 + k\\,dt$ (`diffrax.StepTo`). With `adjoint=None` and `saveat` either
    `None` or grid times at a constant stride, they take the documented fast path: the
    same `solver.step` calls in a `jax.lax.scan` (nested when strided, so only the saved
    states are stored), tested identical to `diffrax.diffeqsolve`. Its reverse-mode
    derivative is plain reverse mode with each step rematerialised or, for `nrt.RK4` on
    an elementwise model (`GrFNN`, `Hopf`: `model.elementwise`), the discrete RK4
    adjoint built from per-unit Jacobians, which keeps `jax.grad` within a few forward
    runs. The fast path is reverse-mode only: for `jax.jvp` / `jax.jacfwd` pass
    `adjoint=diffrax.ForwardMode()`. Any `adjoint` (e.g.
    `diffrax.RecursiveCheckpointAdjoint()` for long runs under memory limits), adaptive
    solves and off-grid `saveat` go through `diffrax.diffeqsolve` itself.

    Model parameters that are concrete zeros (written as numbers, not traced: e.g.
    `beta2=0.0, eps=0.0`) drop their terms from the vector field (`static_zero_fields`),
    so the common special cases cost only their own arithmetic; traced parameters (a
    `jit` argument, a `grad` or `vmap` variable) never do.

    The input between samples is the signal's linear interpolation (`input_hold="linear"`):
    with `nrt.RK4` stepping on the sample grid the half-step stages read the mean of two
    neighbouring samples, so step $k$ reads samples $x_k$ and $x_{k+1}$. With
    `input_hold="zero"` (a zero-order hold) it reads only $x_k$: every stage of the step
    $[t_k, t_{k+1}]$ sees $x(t) = x_k$, and the sample at $t_1$ is never read. That is
    what a real-time engine that receives its input block by block can do, since a
    block's last step then needs nothing from the next block (the duet engine,
    `nrtjax.audio.duet`, steps its blocks this way). The hold needs fixed steps on the
    sample grid (`dt` equal to the signal's sample spacing, no `stepsize_controller`), and
    takes every path above, except that on an elementwise model it differentiates by
    plain reverse mode (the RK4 adjoint reads the input by interpolation).

    **Arguments:**

    - `model`: an nrtjax model (any `(t, y, args) -> dy/dt` Equinox module).
    - `signal`: the input [`nrtjax.Signal`][]; its span $[t_0, t_1]$ is the time span.
    - `dt`: step in seconds (the initial step for adaptive solvers); must divide the span.
    - `solver`: any Diffrax solver instance, default [`nrtjax.RK4`][].
    - `stepsize_controller`: e.g. `diffrax.PIDController(rtol=1e-6, atol=1e-8)` for an
        adaptive solver; `None` means fixed steps of `dt`.
    - `y0`: initial state: the model's structure, a scalar broadcast to it, or `None`
        for `model.initial_state()`.
    - `saveat`: output times; `None` saves every grid point $t_0 + k\\,dt$.
    - `adjoint`: a Diffrax adjoint; `None` for the fast path when possible.
    - `max_steps`: step budget for adaptive solves (default 64 x the grid size).
    - `throw`: raise on divergence or failure. Use `throw=False` under `vmap` and
        inspect `Trajectory.result` so one bad member does not stop a sweep.
    - `input_hold`: how the input is read within a step: `"linear"` (interpolated between
        samples) or `"zero"` (sample $k$ held over step $k$).

    **Returns:**

    A [`nrtjax.Trajectory`][] `(ts, ys, result)`.

    **Raises:**

    `SimulationDivergedError` (a `ValueError`) naming the model, the first time at which
    the state was bad and how to fix it; `ValueError` for a `dt` that does not divide the
    span, an unknown `input_hold`, or a zero-order hold that is not on the sample grid.
    Under an outer `jit` the error is raised by `eqx.error_if` without the time.
    """
    if not isinstance(signal, Signal):
        raise TypeError(f"signal must be an nrt.Signal, got {type(signal).__name__}.")
    n = _num_steps(signal, dt)
    if input_hold == "zero":
        _check_zero_hold(signal, dt, stepsize_controller, adjoint)
        solver = ZeroHold(solver)
    elif input_hold != "linear":
        raise ValueError(f"input_hold must be 'linear' (interpolate between samples) or 'zero' "
                         f"(hold sample k over step k), got {input_hold!r}.")
    y0 = _initial_state(model, y0)
    mask = _complex_mask(y0)
    mixed = any(mask) and not all(mask)
    run_model, run_y0 = (_RealView(model, mask), _to_real(y0)) if mixed else (model, y0)
    # Parameters that are concrete zeros go in as Python numbers, so the vector field
    # still drops their terms inside the compiled loop (models/_base.py).
    fixed = with_static_zeros(run_model)
    dtype = jnp.result_type(*[jnp.real(leaf) for leaf in jtu.tree_leaves(y0)])
    grid = jnp.asarray(signal.t0 + dt * np.arange(n + 1), dtype=dtype)
    fast = None
    if stepsize_controller is None and adjoint is None:
        fast = (0, 1, n + 1) if saveat is None else _strided_indices(saveat, signal.t0, dt, n)
    if fast is not None:
        k0, stride, count = fast
        if elementwise_ok(run_model, solver, run_y0):
            # Only the forward pass drops the zero terms: the adjoint keeps the general
            # field (docs/benchmarks.md: one fused adjoint step per unit is split over
            # threads by XLA:CPU, which made jax.grad 3x slower).
            ys = scan_elementwise((run_model, run_y0, signal), grid, k0, stride, count,
                                  static_zero_names(run_model))
        else:
            ys = scan_fixed(fixed, signal, run_y0, solver, grid, k0, stride, count)
        ts, result = grid[k0 + stride * np.arange(count)], diffrax.RESULTS.successful
    else:
        if stepsize_controller is None:
            controller, dt0, steps = diffrax.StepTo(ts=grid), None, n
        else:
            controller, dt0, steps = stepsize_controller, dt, max_steps or 64 * n
        save_ts = None if saveat is None and stepsize_controller is None else (
            grid if saveat is None else jnp.asarray(saveat, dtype=dtype))
        adjoint = diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
        ts, ys, result = _diffeqsolve(fixed, signal, run_y0, solver, controller, save_ts, grid,
                                      adjoint, steps, dt0)
    if mixed:
        ys = _from_real(ys, mask)
    # A non-finite state stays non-finite (NaN and inf propagate through the vector field),
    # so the last saved state tells whether the run diverged without a pass over them all.
    diverged = ~_all_finite(jtu.tree_map(lambda a: a[-1], ys))
    result = diffrax.RESULTS.where(diverged, diffrax.RESULTS.nonfinite, result)
    traj = Trajectory(ts=ts, ys=ys, result=result)
    if throw:
        traj = _raise_if_failed(traj, model)
    return traj


_FIX_HINT = (
    "Fix: lower the input amplitude or the coupling, take a smaller dt, or lower eps "
    "(eps|z|^2 must stay below 1 in GrFNN-type models); in a sweep pass throw=False "
    "and inspect Trajectory.result."
)


def _guard_last(ts, ys, failed, msg: str):
    """`eqx.error_if` on `ts` and the last saved state, written back into `ys` in place;
    derivatives pass through unchanged (as `error_if`'s own), so `jax.grad` makes no copy
    of the trajectory's cotangent either."""

    @jax.custom_jvp
    def guard(ts, ys, failed):
        ts, last = eqx.error_if((ts, jtu.tree_map(lambda a: a[-1], ys)), failed, msg)
        return ts, jtu.tree_map(lambda a, b: a.at[-1].set(b), ys, last)

    @guard.defjvp
    def _guard_jvp(primals, tangents):
        return guard(*primals), tangents[:2]

    return guard(ts, ys, failed)


def _raise_if_failed(traj: Trajectory, model: AbstractModel) -> Trajectory:
    name = type(model).__name__
    failed = traj.result != diffrax.RESULTS.successful
    if isinstance(failed, jax.core.Tracer):
        # Guard ts and ys together: a check on an output nobody uses is removed as dead code.
        # The check passes its operands through a conditional, which copies them, so it
        # guards the last saved state and writes that back in place, not the whole
        # trajectory (a copy of every saved state cost 15-20% of a 60 s run).
        msg = (f"{name} integration failed: the state diverged (non-finite, or eps|z|^2 >= 1) "
               f"or the solver stopped. {_FIX_HINT}")
        ts, ys = _guard_last(traj.ts, traj.ys, failed, msg)
        return Trajectory(ts=ts, ys=ys, result=traj.result)
    if bool(failed):
        k = int(_first_bad(traj.ys))
        if k >= 0:
            raise SimulationDivergedError(
                f"{name} diverged at t = {float(traj.ts[k]):.6g} s (first non-finite state, "
                f"or eps|z|^2 reached 1). {_FIX_HINT}"
            )
        raise SimulationDivergedError(
            f"{name} integration failed: {traj.result}. Raise max_steps or loosen the "
            "step-size controller's tolerances."
        )
    return traj
