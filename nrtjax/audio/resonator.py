"""The beat resonator: a bank of damped linear oscillators and its read-out.

One layer of the canonical GrFNN with $\\varepsilon = 0$, $\\beta = 0$ and linear input
(Large, Almonte & Velasco 2010) is a constant-Q bank of resonators,
$\\dot z_k = z_k(\\alpha + i 2\\pi) f_k + f_k x(t)$: driven by an onset envelope or a
beat activation $x$, the oscillator at a periodicity $f$ of $x$ converges to
$z \\propto X(f) e^{i 2\\pi f t}$, the input's Fourier component there with its phase
(Scheirer 1998; Large 2000). The read-out turns the bank's state into a tempo and a
phase: a salience per oscillator (its amplitude supported by the octave above: a beat is
supported by its subdivisions), a peak tracked causally across time, and the unit
phasor of the oscillators in a band around it, which carries the beat's phase and drives
a motor oscillator (ASHLE).

The groove tracker ([`nrtjax.audio.track`][]), the surrogate's forcing
([`nrtjax.surrogate.render_song`][]), the video coupling
([`nrtjax.video.motion_forcing`][]) and the oscillator beat decoder
([`nrtjax.beats.decode_oscillator`][]) all build on these functions.

**References:**

Large, E. W., Almonte, F. V. & Velasco, M. J. (2010). A canonical model for gradient
frequency neural networks. Physica D 239(12), 905-911.

Scheirer, E. D. (1998). Tempo and beat analysis of acoustic musical signals. J. Acoust.
Soc. Am. 103(1), 588-601.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, Int

from .._dtypes import to_complex
from ..models import GrFNN
from ..models.ashle import unit_phasor


def octave_grid(fmin: float, per_octave: int, octaves: float) -> np.ndarray:
    """`fmin * 2**(j / per_octave)` for `j = 0 .. round(per_octave * octaves)`, in Hz."""
    if not (fmin > 0 and per_octave >= 1 and octaves > 0):
        raise ValueError(f"Need fmin > 0, per_octave >= 1 and octaves > 0, got fmin={fmin}, "
                         f"per_octave={per_octave}, octaves={octaves}.")
    n = int(round(per_octave * octaves)) + 1
    return fmin * 2.0 ** (np.arange(n) / per_octave)


def resonator_bank(freqs: Float[ArrayLike, " n"], alpha: float, *, beta1: float = 0.0,
                   weight: float = 1.0) -> GrFNN:
    """The bank: a linear-input GrFNN layer with damping `alpha` < 0 and $\\varepsilon = 0$
    (`beta1` < 0 adds amplitude saturation; 0 keeps the bank linear).

    Its resonance is constant-Q: half-power half-width $|\\alpha| f / 2\\pi$ Hz, time
    constant $1 / (|\\alpha| f)$ s.
    """
    if not alpha < 0:
        raise ValueError(f"The resonator bank needs alpha < 0 (damped), got {alpha!r}.")
    return GrFNN(np.asarray(freqs, np.float64), alpha=alpha, beta1=beta1, beta2=0.0, eps=0.0,
                 input="linear", weight=weight)


def octave_salience(amp: Float[Array, "*t n"], per_octave: int, harmonic: float
                    ) -> Float[Array, "*t n"]:
    """Each oscillator's amplitude plus `harmonic` times the amplitude one octave above
    (`per_octave` grid steps up; zero past the grid's top)."""
    up = jnp.concatenate([amp[..., per_octave:], jnp.zeros_like(amp[..., :per_octave])], axis=-1)
    return amp + harmonic * up


def log_prior(freqs: Float[ArrayLike, " n"], centre_hz, sd_octaves: float) -> Float[Array, " n"]:
    """Log of a log-normal preference (unnormalised), in octaves from `centre_hz`."""
    return -0.5 * (jnp.log2(jnp.asarray(freqs) / centre_hz) / sd_octaves) ** 2


def track_peak(score: Float[Array, "time n"], *, search: int, hysteresis: float,
               start: Int[ArrayLike, ""] | None = None) -> Int[Array, " time"]:
    """The causally tracked peak of a salience `score` (grid index per time).

    It follows the local maximum within `search` grid steps of the previous peak and
    jumps to the global maximum only when that is `hysteresis` times larger than the
    local one, so the read-out does not hop between metrical levels. `start` is the
    peak before the first row (default: the first row's maximum).
    """
    idx = jnp.arange(score.shape[1])
    c0 = jnp.argmax(score[0]) if start is None else jnp.asarray(start, idx.dtype)

    def step(c, row):
        local = jnp.argmax(jnp.where(jnp.abs(idx - c) <= search, row, -jnp.inf))
        top = jnp.argmax(row)
        c = jnp.where(row[top] > hysteresis * row[local], top, local)
        return c, c

    _, peaks = jax.lax.scan(step, c0, score)
    return peaks


def gaussian_band(peaks: Int[Array, " time"], n: int, sigma: float) -> Float[Array, "time n"]:
    """Weights $e^{-(k - k_p)^2 / 2\\sigma^2}$ over the grid around each tracked peak
    $k_p$ (`sigma` in grid steps)."""
    idx = jnp.arange(n)
    return jnp.exp(-0.5 * ((idx[None, :] - peaks[:, None]) / sigma) ** 2)


def band_phasor(zs: Complex[Array, "time n"], weights: Float[Array, "time n"]
                ) -> Complex[Array, " time"]:
    """The unit phasor of $\\sum_k w_k z_k$ (0 where the sum is 0): the phase of the
    oscillators in the band, at unit strength."""
    mix = jnp.sum(to_complex(weights.astype(jnp.real(zs).dtype), zs.dtype) * zs, axis=-1)
    phasor, _ = unit_phasor(mix)
    return phasor
