"""Ground truth for the surrogate: songs -> phase-carrying forcing -> ASHLE, by vmap.

ASHLE does not entrain to a raw onset envelope (DESIGN.md section 7). The forcing is
built causally the NRT way: a GrFNN layer driven by the onset envelope resonates at the
beat, and the unit phasor of its amplitude-weighted band around the resonance peak
drives ASHLE.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from .._dtypes import to_complex
from .._signal import Signal
from .._simulate import simulate
from ..models import ASHLE, ASHLEState, GrFNN, log_freqs
from ._ashle import ComplexStateASHLE, real_state

# The resonance layer: 48 log-spaced oscillators covering 48-216 BPM, lightly damped
# (half-power bandwidth about 2.4 % of f), with a 1/f tempo prior on the amplitudes.
LAYER_FREQS = (0.8, 3.6, 48)
LAYER_ALPHA = -0.15
BAND_SHARPNESS = 8.0
GATE = 0.05
ENVELOPE_TAU = 0.03
# ASHLE as driven here. lambda1 = 1.5 instead of the reference 4: with the reference
# learning rate the motor frequency of a few noisy songs collapsed to f ~ 0 (an absorbing
# state of f' = f(...)) in our measurements, which is not entrainment worth imitating.
ASHLE_SETTINGS = dict(f0=1.8, lambda1=1.5, lambda2=2.0, gamma=0.02, a=1.0, b=-1.0, forcing=1.0)


def ground_truth_model() -> ASHLE:
    """The ASHLE instance every ground-truth trajectory uses (`ASHLE_SETTINGS`)."""
    return ASHLE(**ASHLE_SETTINGS)


def onset_envelope(
    onsets: Float[ArrayLike, " onsets"], velocities: Float[ArrayLike, " onsets"],
    ts: Float[ArrayLike, " time"], *, tau: float | None = None,
) -> Float[Array, " time"]:
    """$\\sum_k v_k e^{-(t-t_k)/\\tau}$ for $t \\ge t_k$, causal; zero-velocity onsets
    are padding (so songs with different onset counts can be vmapped)."""
    tau = ENVELOPE_TAU if tau is None else tau
    ts = jnp.asarray(ts)
    lag = ts[:, None] - jnp.asarray(onsets, ts.dtype)[None, :]
    pulse = jnp.exp(-jnp.maximum(lag, 0.0) / tau) * (lag >= 0)
    return pulse @ jnp.asarray(velocities, ts.dtype)


def forcing_from_envelope(env: Float[Array, " time"], fs: float) -> Complex[Array, " time"]:
    """The phase-carrying forcing: a GrFNN layer driven by `env`, read out causally.

    At each time the oscillators are weighted by $(r_k/\\max_j r_j)^q$ with
    $r_k = |z_k|/f_k$ (amplitude with a $1/f$ tempo prior, $q$ = `BAND_SHARPNESS`), the
    weighted sum of their phasors gives the phase, and the amplitude is gated on by
    $A^2/(A^2 + g^2)$ with $A = \\max_k |z_k|$ so that the forcing fades in as the layer
    resonates.
    """
    layer = GrFNN(log_freqs(*LAYER_FREQS), alpha=LAYER_ALPHA, beta1=-1.0, beta2=0.0, eps=0.0)
    layer = jtu_cast(layer, env.dtype)
    z = simulate(layer, Signal.sampled(env, fs), dt=1.0 / fs, throw=False).ys
    amp = jnp.abs(z)
    score = amp / layer.freqs[None, :]
    score = score / jnp.maximum(jnp.max(score, axis=-1, keepdims=True), 1e-30)
    band = jnp.sum(to_complex(score**BAND_SHARPNESS, z.dtype) * z, axis=-1)
    a = jnp.max(amp, axis=-1)
    gain = a**2 / (a**2 + GATE**2) / jnp.maximum(jnp.abs(band), 1e-30)
    return band * to_complex(gain, band.dtype)


def jtu_cast(module, dtype):
    """Cast a model's floating parameters to the real dtype `dtype`."""
    return jax.tree_util.tree_map(
        lambda p: p.astype(dtype) if eqx.is_inexact_array(p) else p, module)


def render_song(onsets: ArrayLike, velocities: ArrayLike, duration: float,
                fs: float = 256.0) -> Signal:
    """The stimulus Signal of a song: the complex GrFNN forcing at `fs` on $[0, T]$.

    Causal: the value at $t$ depends on onsets before $t$ only.

    **Arguments:**

    - `onsets`: onset times in seconds, shape `(onsets,)`; `velocities`: their
        loudness in $[0, 1]$, same shape.
    - `duration`: $T$ in seconds; `fs`: sampling rate in Hz.

    **Returns:** a complex [`nrtjax.Signal`][] (the forcing $F(t)$ that drives ASHLE).
    """
    onsets = np.asarray(onsets, dtype=np.float64).reshape(-1)
    velocities = np.asarray(velocities, dtype=np.float64).reshape(-1)
    if onsets.shape != velocities.shape:
        raise ValueError(f"{onsets.size} onsets but {velocities.size} velocities; give one each.")
    if not (np.all(np.isfinite(onsets)) and np.all(np.isfinite(velocities))):
        raise ValueError("Onsets and velocities must be finite.")
    if np.any((velocities < 0) | (velocities > 1)):
        raise ValueError("Velocities must lie in [0, 1].")
    if not (duration > 0 and fs > 0):
        raise ValueError(f"duration and fs must be positive, got {duration}, {fs}.")
    ts = np.arange(int(round(duration * fs)) + 1) / fs
    env = onset_envelope(onsets, velocities, ts)
    return Signal(ts, _forcing_jit(env, fs))


_forcing_jit = eqx.filter_jit(forcing_from_envelope)


@eqx.filter_jit
def _ashle_run(forcing: Complex[Array, " time"], fs: float) -> ASHLEState:
    model = jtu_cast(ground_truth_model(), jnp.real(forcing).dtype)
    traj = simulate(ComplexStateASHLE(model), Signal.sampled(forcing, fs), dt=1.0 / fs,
                    throw=False)
    return real_state(traj.ys)


def ground_truth(sig: Signal) -> ASHLEState:
    """The ASHLE trajectory the surrogate imitates: `ASHLE_SETTINGS`, RK4 with the
    step equal to the sample spacing, on the Signal's grid.

    **Arguments:** `sig`: a uniformly sampled complex stimulus (from [`render_song`][]).

    **Returns:** an `ASHLEState(d, f_d, z, f)` of `(time,)` arrays.
    """
    if sig.dt is None:
        raise ValueError("ground_truth needs a uniformly sampled Signal (use render_song).")
    return _ashle_run(jnp.asarray(sig.xs, dtype=jnp.result_type(sig.xs, 1j)), sig.fs)


@eqx.filter_jit
def _batch_truth(onsets, velocities, ts, fs):
    def one(o, v):
        forcing = forcing_from_envelope(onset_envelope(o, v, ts), fs)
        y = _ashle_run(forcing, fs)
        return forcing, y
    return jax.vmap(one)(onsets, velocities)
