"""The simulated half of the neural duet: ASHLE drummer, GrFNN listener, Lorenz melodist.

One block is one jitted call (`advance`): `nrtjax.simulate` steps the `DuetField` over the
block with the input held over each step, compiled once per block length and reused for
every block whatever the parameter values (they are traced arrays, never static).
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

from .._dtypes import complex_dtype
from .._signal import Signal
from .._simulate import simulate
from ..models import ASHLE, ASHLEState, GrFNN, Lorenz
from ..models.duet import LORENZ_Y0, DuetField


class SimParams(NamedTuple):
    """The traced (continuously changeable) parameters of one block, as arrays."""

    f0: Float[Array, ""]
    lambda1: Float[Array, ""]
    lambda2: Float[Array, ""]
    gamma: Float[Array, ""]
    rho: Float[Array, ""]
    lorenz_rate: Float[Array, ""]
    forcing_gain: Float[Array, ""]
    pulse_octaves: Float[Array, ""]


class SimState(NamedTuple):
    """The simulated state carried from block to block.

    - `ashle`: the drummer's `ASHLEState(d, f_d, z, f)`.
    - `grfnn`: the listener layer, complex `(n,)`.
    - `lorenz`: the melodist, `(3,)`.
    - `phase`: the drummer's unwrapped motor phase $\\angle z$ in radians (beats at $2\\pi k$).
    """

    ashle: ASHLEState
    grfnn: Complex[Array, " n"]
    lorenz: Float[Array, "3"]
    phase: Float[Array, ""]


class SimTrace(NamedTuple):
    """Per-step outputs of one block (the state after each step), leading axis `steps`."""

    phase: Float[Array, " steps"]
    f: Float[Array, " steps"]
    amp: Float[Array, " steps"]
    lorenz: Float[Array, "steps 3"]
    pulse: Complex[Array, " steps"]
    grfnn_amp: Float[Array, " n"]


def build_field(p: SimParams, freqs: Float[Array, " n"]) -> DuetField:
    """The vector field for parameters `p` and listener frequencies `freqs` (Hz)."""
    ashle = ASHLE(f0=p.f0, lambda1=p.lambda1, lambda2=p.lambda2, gamma=p.gamma,
                  forcing=p.forcing_gain)
    # eps = 0: the cubic truncation, which saturates any input amplitude (with eps > 0 a
    # strong input drives eps|z|^2 to 1, where the canonical model is undefined).
    net = GrFNN(freqs, alpha=0.0, beta1=-1.0, beta2=0.0, eps=0.0)
    # Lorenz takes its dtype from sigma, whose default (10.0) is float64 under x64: the
    # classical sigma and beta are cast to the engine's dtype, that of the parameters.
    lorenz = jax.tree.map(lambda a: a.astype(p.rho.dtype), Lorenz(rho=p.rho))
    octs = jnp.log2(freqs / p.f0)
    weights = jnp.exp(-0.5 * (octs / p.pulse_octaves) ** 2)
    return DuetField(ashle, net, lorenz, weights, p.lorenz_rate)


def initial_sim_state(f0: float, n: int, dtype) -> SimState:
    """ASHLE's reference start ($d_0 = z_0 = 0.01$, $f_{d,0} = f(0) = f_0$), Lorenz at
    `LORENZ_Y0` (on the attractor), phase 0, and the GrFNN at rest ($z = 0$: without forcing
    its pulse is exactly
    zero, so the drummer plays at its spontaneous rate)."""
    c = jnp.asarray(0.01, dtype=complex_dtype(dtype))
    f = jnp.asarray(f0, dtype=dtype)
    return SimState(
        ashle=ASHLEState(c, f, c, f),
        grfnn=jnp.zeros((n,), dtype=complex_dtype(dtype)),
        lorenz=jnp.asarray(LORENZ_Y0, dtype=dtype),
        phase=jnp.angle(c).astype(dtype),
    )


@eqx.filter_jit
def advance(state: SimState, p: SimParams, forcing: Complex[Array, " steps"],
            freqs: Float[Array, " n"], fs: int) -> tuple[SimState, SimTrace]:
    """One block: `forcing` holds the input sample of each step of `1/fs` s (a zero-order
    hold, so that a block never needs the next block's first sample and streaming equals
    one long run). Compiled once per (block length, `fs`, dtype)."""
    field = build_field(p, freqs)
    # The field depends on time only through its input, so each block runs on its own
    # clock from 0: the Signal's span is then the same static value for every block (an
    # absolute time would recompile per block). Its last sample, at the block's end, is
    # never read under the hold.
    signal = Signal.sampled(jnp.concatenate([forcing, forcing[-1:]]), fs)
    traj = simulate(field, signal, dt=1 / fs, y0=(state.ashle, state.grfnn, state.lorenz),
                    input_hold="zero", throw=False)
    drummer, zg, xyz = traj.ys
    z = drummer.z
    phase = state.phase + jnp.cumsum(jnp.angle(z[1:] * jnp.conj(z[:-1])))
    phase_end = eqx.error_if(phase[-1], ~traj.ok, "The duet simulation diverged (non-finite "
                             "state). Lower forcing_gain or the tempo, or raise the engine's "
                             "fs_sim.")
    trace = SimTrace(phase, drummer.f[1:], jnp.abs(z[1:]), xyz[1:],
                     jax.vmap(field.pulse)(zg[1:]), grfnn_amp=jnp.abs(zg[-1]))
    last = jax.tree.map(lambda a: a[-1], (drummer, zg, xyz))
    return SimState(*last, phase_end), trace


def sim_params_from(values: dict, dtype) -> SimParams:
    """`SimParams` as arrays of `dtype` (arrays, so that new values never retrace)."""
    # NumPy scalars are arrays to eqx.filter_jit (traced, never static) and avoid a
    # device dispatch per parameter.
    return SimParams(**{k: np.asarray(float(values[k]), dtype=dtype) for k in SimParams._fields})


def as_forcing(forcing, n: int, t0: float, fs: float | int, dtype) -> np.ndarray:
    """The block's forcing as `n` complex samples at `t0 + k/fs` (zeros for `None`).

    `forcing` may be an array of `n` samples (real or complex) or an `nrtjax.Signal`,
    evaluated at those times.
    """
    cdt = complex_dtype(dtype)
    if forcing is None:
        return np.zeros((n,), dtype=cdt)
    from .._signal import Signal

    if isinstance(forcing, Signal):
        # Signal.evaluate's linear interpolation (ends held), on the host: one block's
        # samples are too few to be worth a device dispatch per block.
        ts = t0 + np.arange(n) / fs
        grid, vals = np.asarray(forcing.ts), np.asarray(forcing.xs)
        if vals.ndim != 1:
            raise ValueError(f"The forcing Signal must have one channel, got {vals.shape[1:]}.")
        xs = np.interp(ts, grid, vals.real)
        if np.iscomplexobj(vals):
            xs = xs + 1j * np.interp(ts, grid, vals.imag)
    else:
        xs = np.asarray(forcing)
    if xs.shape != (n,):
        raise ValueError(f"The block's forcing must have {n} samples (block_seconds x fs_sim, "
                         f"one channel), got shape {xs.shape}.")
    xs = np.asarray(xs).astype(cdt)
    if not np.all(np.isfinite(xs)):
        raise ValueError("The block's forcing contains NaN or inf; clean the input stream.")
    return xs
