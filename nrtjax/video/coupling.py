"""From motion to the duet: a phase-carrying drummer forcing, a register, a rhythm measure.

ASHLE locks to a complex forcing that carries the beat's phase, not to a raw pulse
train (docs/concepts.md, ASHLE). The motion energy is therefore first heard by a bank of
damped canonical oscillators (a GrFNN layer, Large, Almonte & Velasco 2010): the
oscillators at the motion rhythm resonate, and their amplitude-weighted complex output
is the forcing. The forcing is causal (built step by step from past motion only).
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
import scipy.signal
from jaxtyping import Array, ArrayLike, Complex, Float

from .._signal import Signal
from .._simulate import simulate
from ..models import GrFNN, log_freqs


@dataclasses.dataclass(frozen=True)
class MotionForcing:
    """The drummer's forcing built from motion energy.

    **Fields:**

    - `signal`: the complex forcing $F(t)$ as an [`nrtjax.Signal`][] on the oscillator grid.
    - `freqs`: the resonator bank's natural frequencies in Hz, shape `(n,)`.
    - `amplitude`: $|z_k(t)|$ of the bank, shape `(time, n)`.
    - `salience`: $\\tanh(\\max(\\max_k \\bar r_k - r_f, 0) / r_0)$ with $\\bar r_k$ the
        mean amplitude over the second half: how strongly the bank found a rhythm, in
        $[0, 1)$.
    - `peak_hz`: the frequency of the strongest resonance (second half).
    - `peakiness`: the largest mean amplitude over the mean across the bank (second
        half): about 1 for a flat profile (aperiodic motion, scene cuts), 3 or more when
        a single rhythm dominates.
    """

    signal: Signal
    freqs: np.ndarray
    amplitude: np.ndarray
    salience: float
    peak_hz: float
    peakiness: float


def relative_modulation(energy: Float[ArrayLike, " time"]) -> Float[Array, " time"]:
    """$x = E / \\bar E - 1$: motion energy as a dimensionless modulation around its mean,
    so that a rhythm's strength does not depend on the video's size, contrast or units.

    **Raises:** `ValueError` for an energy whose mean is not positive (no motion).
    """
    e = jnp.asarray(energy)
    mean = float(jnp.mean(e))
    if not mean > 0:
        raise ValueError("Motion energy has no positive mean: the video does not move.")
    return e / mean - 1


def motion_forcing(
    ts: Float[ArrayLike, " time"],
    energy: Float[ArrayLike, " time"],
    *,
    fmin: float = 0.5,
    fmax: float = 4.0,
    n: int = 48,
    alpha: float = -0.5,
    weight: float = 1.0,
    sharpness: float = 8.0,
    r0: float = 0.05,
    floor: float = 0.02,
) -> MotionForcing:
    """The drummer's complex forcing from a motion-energy time series.

    A GrFNN layer of damped oscillators ($\\alpha < 0$, $\\beta_1 = -1$, linear input,
    log-spaced from `fmin` to `fmax`) is driven by the relative modulation
    $x = E/\\bar E - 1$. Its amplitude-weighted output
    $w(t) = \\sum_k |z_k|^p z_k / \\sum_k |z_k|^p$ follows the strongest resonance, and
    $$F(t) = \\tanh(\\max(|w| - r_f, 0)/r_0)\\, e^{i \\angle w}$$
    carries the rhythm's phase with a strength that saturates at 1 for a clear rhythm and
    is exactly 0 when nothing resonates above the floor $r_f$ (e.g. a drifting grating,
    whose motion energy is constant). In the linear regime a resonator's amplitude equals
    the modulation depth of the motion energy at its frequency (for $\\alpha = -1/2$), so
    $r_f = 0.02$ ignores rhythms weaker than 2 % of the mean motion. The gate matters
    because the duet's listener is a critical GrFNN whose response grows like the cube
    root of its input: without it, pixel-level ripple would become a confident pulse.

    **Arguments:**

    - `ts`: uniform sample times in seconds (the oscillator grid), shape `(time,)`.
    - `energy`: motion energy on that grid (see [`nrtjax.video.resample`][]).
    - `fmin`, `fmax`, `n`: the bank's frequency range in Hz and size.
    - `alpha`: damping of the bank (negative: no oscillation without input).
    - `weight`: input gain of the bank.
    - `sharpness`: $p$, how strongly the output follows the largest amplitude.
    - `r0`: amplitude above the floor at which the forcing reaches $\\tanh 1 = 0.76$ of
        full strength.
    - `floor`: $r_f$, the amplitude below which the forcing is 0 (no rhythm).

    **Returns:** a [`nrtjax.video.MotionForcing`][].
    """
    if not (r0 > 0 and floor >= 0 and sharpness >= 0 and alpha < 0):
        raise ValueError(f"Need r0 > 0, floor >= 0, sharpness >= 0 and alpha < 0 (a damped "
                         f"bank), got r0={r0!r}, floor={floor!r}, sharpness={sharpness!r}, "
                         f"alpha={alpha!r}.")
    ts = np.asarray(ts, dtype=np.float64)
    x = relative_modulation(energy)
    freqs = log_freqs(fmin, fmax, n)
    bank = GrFNN(freqs, alpha=alpha, beta1=-1.0, beta2=0.0, eps=0.0, weight=weight)
    sig = Signal(ts, x)
    # Start at rest (z = 0): a bank started in phase would itself force a rhythm.
    traj = simulate(bank, sig, dt=float(ts[1] - ts[0]), y0=0.0)
    z = traj.ys
    w = _weighted_output(z, sharpness)
    r = jnp.abs(w)
    strength = jnp.tanh(jnp.maximum(r - floor, 0.0) / r0)
    forcing = jnp.where(r > 0, w / jnp.where(r > 0, r, 1.0), 0.0) * strength
    amp = np.asarray(jnp.abs(z))
    tail = amp[amp.shape[0] // 2:].mean(axis=0)
    k = int(np.argmax(tail))
    salience = float(np.tanh(max(tail[k] - floor, 0.0) / r0))
    peakiness = float(tail[k] / tail.mean()) if tail.mean() > 0 else 0.0
    return MotionForcing(Signal(ts, forcing), freqs, amp, salience, float(freqs[k]), peakiness)


def _weighted_output(z: Complex[Array, "time n"], p: float) -> Complex[Array, " time"]:
    r = jnp.abs(z)
    # Normalise by the largest amplitude first so that |z|^p neither under- nor overflows.
    peak = jnp.max(r, axis=1, keepdims=True)
    wts = (r / jnp.where(peak > 0, peak, 1.0)) ** p
    total = jnp.sum(wts, axis=1)
    # A bank entirely at rest (z = 0) has no phase to pass on: output 0.
    return jnp.sum(wts * z, axis=1) / jnp.where(total > 0, total, 1.0)


def has_beat(
    forcing: MotionForcing, *, threshold: float = 0.5, min_peakiness: float = 2.0
) -> bool:
    """Whether the motion has a beat: the bank resonates strongly (salience at least
    `threshold`) and at one rhythm (its amplitude profile peaks at `min_peakiness` times
    its mean or more: a dominant resonance, not broadband motion such as scene cuts)."""
    return forcing.salience >= threshold and forcing.peakiness >= min_peakiness


def motion_phase(
    times: Float[ArrayLike, " frames"], energy: Float[ArrayLike, " frames"], fps: float, *,
    fmin: float = 0.5, fmax: float = 4.0, bandwidth: float = 0.25,
) -> tuple[np.ndarray, float]:
    """The phase of the motion's dominant rhythm, for measuring locking to it.

    The dominant rhythm is the largest peak of the motion energy's spectrum (Hann
    window) between `fmin` and `fmax`; the energy is band-passed around it ($\\pm$
    `bandwidth` of its frequency, zero-phase 2nd-order Butterworth) and the phase is the
    angle of the analytic signal (Hilbert). This is a property of the stimulus alone and
    is computed offline over the whole clip.

    **Returns:** `(phase, peak_hz)`: unwrapped phase in radians at `times`, and the
    dominant frequency in Hz.
    """
    e = np.asarray(energy, dtype=np.float64)
    e = e - e.mean()
    spec = np.abs(np.fft.rfft(e * np.hanning(e.size), n=8 * e.size))
    f = np.fft.rfftfreq(8 * e.size, 1.0 / fps)
    band = (f >= fmin) & (f <= fmax)
    peak = float(f[band][np.argmax(spec[band])])
    lo, hi = peak * (1 - bandwidth), min(peak * (1 + bandwidth), 0.45 * fps)
    sos = scipy.signal.butter(2, [lo, hi], btype="bandpass", fs=fps, output="sos")
    filtered = scipy.signal.sosfiltfilt(sos, e)
    return np.unwrap(np.angle(scipy.signal.hilbert(filtered))), peak


def register_from_position(
    vertical: Float[ArrayLike, " time"], *, low: float | int = 48.0, high: float | int = 84.0
) -> Float[Array, " time"]:
    """The melodist's register (a MIDI note number) from the moving mass's height:
    $\\text{low} + (\\text{high} - \\text{low})\\, v$ with $v \\in [0, 1]$ (1 = top of
    the frame): motion high in the picture plays high notes."""
    if not high > low:
        raise ValueError(f"Need high > low MIDI notes, got low={low!r}, high={high!r}.")
    v = jnp.clip(jnp.asarray(vertical), 0.0, 1.0)
    return low + (high - low) * v
