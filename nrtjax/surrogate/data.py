"""Ground truth for the surrogate: songs -> phase-carrying forcing -> ASHLE, by vmap.

ASHLE does not entrain to a raw onset envelope (docs/concepts.md, ASHLE). The forcing is
built causally the NRT way: a linear GrFNN layer driven by the onset envelope resonates
at the beat; a causally tracked resonance peak (with hysteresis, so the read-out does
not hop between metrical levels) picks a band of oscillators, and the unit phasor of
their summed complex state drives ASHLE.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from .._dtypes import to_complex
from .._signal import Signal
from .._simulate import simulate
from ..audio import resonator as rs
from ..models import ASHLE, ASHLEState

# The resonance layer and its read-out (all in `FORCING_SETTINGS`, which also names the
# dataset cache and takes the tuning script's overrides; [`forcing_resonator`][] reads
# it as the typed [`nrtjax.audio.resonator.ResonatorSettings`][] plus `gate` and `fade`).
# A linear, damped GrFNN on a log grid of `per_octave` oscillators per
# octave from `fmin` Hz over `octaves` octaves (42-238 BPM); `alpha` sets the constant-Q
# resonance (half-power half-width |alpha| f / 2 pi, time constant 1 / (|alpha| f)).
# Salience of an oscillator ([`nrtjax.audio.resonator.salience`][]): its amplitude divided by its build-up
# 1 - exp(-|alpha| f_k t) (a slow oscillator needs longer to ring up; without this the
# fast ones win the first seconds and the read-out starts on the eighth notes), never
# below `buildup_floor` s; plus `harmonic` times the octave above (the subdivisions
# support a beat); times the tilt f_k^-tilt and a log-Gaussian tempo prior of `prior_sd`
# octaves around `prior_f` Hz (preferred tempo near 120 BPM), so that neither the eighth
# notes of a slow song nor the half notes of a fast one win. The tracked peak follows the
# local maximum within `search` grid steps and jumps to the global maximum only when it
# is `hysteresis` times more salient. The band is a Gaussian of `band_sigma` grid steps
# around the peak. `gate` fades the forcing in as the layer first resonates
# ($A^2 / (A^2 + g^2)$ on the running maximum $A$ of $|z|$, so it never drops later),
# and `fade` = (t0, t1) ramps it linearly from 0 at t0 to 1 at t1 s: before then the
# tracked peak is not yet reliable, and ASHLE's fast frequency learning would follow it.
FORCING_SETTINGS = {"fmin": 0.7, "per_octave": 30, "octaves": 2.5, "alpha": -0.12,
                    "harmonic": 0.25, "tilt": 0.5, "prior_f": 2.0, "prior_sd": 1.0,
                    "buildup_floor": 0.5, "hysteresis": 1.4, "search": 2,
                    "band_sigma": 1.75, "gate": 0.05, "fade": (1.0, 3.0)}
ENVELOPE_TAU = 0.03
# ASHLE as driven here (chosen on the training, validation and a separate 65-180 BPM
# tuning set, never on the held-out songs). ASHLE's two frequency-learning loops (f_d from
# the forcing, f from d) are second-order phase-locked loops: the phase error drives the
# frequency at rate lambda1, the coupling (F_d |F| for d, 1 for z) damps it. The reference
# lambda1 = 4 makes them strongly underdamped: every onset-timing perturbation of the
# forcing rings f at roughly 0.5-1 Hz, and large early transients drive f to f ~ 0 (an
# absorbing state of f' = f(...)). lambda1 = 1 with a stronger drive F_d = 3 damps the
# sensory loop; lambda2 = 1 (lower elasticity) still lets f reach 70 and 175 BPM from
# f0 = 1.8 Hz (1000 / SMT, SMT = 556 ms). On the tuning set 36/36 songs lock; the median
# sd of f about its 4 s moving average is 0.037 Hz there (0.040 on the training set).
ASHLE_SETTINGS = {"f0": 1.8, "lambda1": 1.0, "lambda2": 1.0, "gamma": 0.02, "a": 1.0, "b": -1.0,
                  "forcing": 3.0}
"""ASHLE's parameters for the surrogate's ground truth (docs/surrogate.md, Ground truth)."""


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


def forcing_resonator() -> rs.ResonatorSettings:
    """The resonance layer's settings (`FORCING_SETTINGS` without `gate` and `fade`)."""
    return rs.ResonatorSettings(**{k: FORCING_SETTINGS[k] for k in rs.ResonatorSettings._fields})


def forcing_from_envelope(env: Float[Array, " time"], fs: float) -> Complex[Array, " time"]:
    """The phase-carrying forcing: a GrFNN layer driven by `env`, read out causally.

    At each time the unit phasor of $\\sum_k g_k z_k$, with $g_k$ a Gaussian band of
    `band_sigma` grid steps around the tracked resonance peak
    ([`nrtjax.audio.resonator.track_peak`][] of [`nrtjax.audio.resonator.salience`][] with
    the settings of `forcing_resonator()`), faded in once by the running maximum of $|z|$ (`gate`) and by a
    linear ramp over `fade` seconds.
    """
    res = forcing_resonator()
    layer = jtu_cast(res.bank(), env.dtype)
    z = simulate(layer, Signal.sampled(env, fs), dt=1.0 / fs, throw=False).ys
    amp = jnp.abs(z)
    ts = jnp.arange(env.shape[0], dtype=amp.dtype) / fs
    peaks = rs.track_peak(rs.salience(amp, layer.freqs, res, ts), search=res.search,
                          hysteresis=res.hysteresis)
    band = rs.gaussian_band(peaks, layer.freqs.shape[0], res.band_sigma)
    phasor = rs.band_phasor(z, band.astype(amp.dtype))
    top = jax.lax.cummax(jnp.max(amp, axis=1))
    gain = top**2 / (top**2 + FORCING_SETTINGS["gate"] ** 2)
    t0, t1 = FORCING_SETTINGS["fade"]
    gain = gain * jnp.clip((ts - t0) / (t1 - t0), 0.0, 1.0)
    return phasor * to_complex(gain, phasor.dtype)


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
    return simulate(model, Signal.sampled(forcing, fs), dt=1.0 / fs, throw=False).ys


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
