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
([`nrtjax.beats.decode.decode_oscillator`][]) all build on these functions.

**References:**

Large, E. W., Almonte, F. V. & Velasco, M. J. (2010). A canonical model for gradient
frequency neural networks. Physica D 239(12), 905-911.

Scheirer, E. D. (1998). Tempo and beat analysis of acoustic musical signals. J. Acoust.
Soc. Am. 103(1), 588-601.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, Int

from .._dtypes import to_complex
from ..models import GrFNN
from ..models.ashle import unit_phasor


class ResonatorSettings(NamedTuple):
    """A resonator bank and its read-out.

    - `fmin`, `per_octave`, `octaves`: the grid `fmin * 2**(j / per_octave)` Hz,
        `j = 0 .. round(per_octave * octaves)` ([`octave_grid`][]).
    - `alpha`: damping ($< 0$); resonance half-power half-width $|\\alpha| f / 2\\pi$ Hz,
        time constant $1/(|\\alpha| f)$ s.
    - `harmonic`: weight $h$ of the oscillator one octave up in the salience.
    - `tilt`: exponent $p$ of the $f^{-p}$ weight in the salience.
    - `prior_f`, `prior_sd`: a log-Gaussian tempo preference, centre (Hz) and s.d.
        (octaves).
    - `buildup_floor`: divide amplitudes by their build-up $1 - e^{-|\\alpha| f t}$
        with $t$ floored at this (s), so slow oscillators are not outshone while they
        ring up; `None`: no correction.
    - `search`, `hysteresis`: the peak tracking ([`track_peak`][]).
    - `band_sigma`: s.d. of the Gaussian band around the tracked peak (grid steps).
    """

    fmin: float = 0.5
    per_octave: int = 24
    octaves: float | int = 4.0
    alpha: float = -0.1
    harmonic: float = 0.5
    tilt: float = 0.0
    prior_f: float = 2.0
    prior_sd: float = 1.0
    buildup_floor: float | None = None
    search: int = 2
    hysteresis: float = 1.5
    band_sigma: float = 1.5

    def freqs(self) -> np.ndarray:
        """The bank's natural frequencies in Hz."""
        return octave_grid(self.fmin, self.per_octave, self.octaves)

    def bank(self) -> GrFNN:
        """The bank as a GrFNN layer ([`resonator_bank`][])."""
        return resonator_bank(self.freqs(), self.alpha)


def octave_grid(fmin: float, per_octave: int, octaves: float | int) -> np.ndarray:
    """`fmin * 2**(j / per_octave)` for `j = 0 .. round(per_octave * octaves)`, in Hz."""
    if not (fmin > 0 and per_octave >= 1 and octaves > 0):
        raise ValueError(f"Need fmin > 0, per_octave >= 1 and octaves > 0, got fmin={fmin}, "
                         f"per_octave={per_octave}, octaves={octaves}.")
    n = int(round(per_octave * octaves)) + 1
    return fmin * 2.0 ** (np.arange(n) / per_octave)


def resonator_bank(freqs: Float[ArrayLike, " n"], alpha: float, *, beta1: float = 0.0,
                   weight: float = 1.0) -> GrFNN:
    """The bank: a linear-input GrFNN layer with damping `alpha` < 0 and $\\varepsilon = 0$
    (`beta1` < 0 adds amplitude saturation; 0 keeps the bank linear), input gain `weight`.
    """
    if not alpha < 0:
        raise ValueError(f"The resonator bank needs alpha < 0 (damped), got {alpha!r}.")
    return GrFNN(freqs, alpha=alpha, beta1=beta1, beta2=0.0, eps=0.0, input="linear",
                 weight=weight)


def octave_salience(amp: Float[Array, "*t n"], per_octave: int, harmonic: float
                    ) -> Float[Array, "*t n"]:
    """Each oscillator's amplitude plus `harmonic` times the amplitude one octave above
    (`per_octave` grid steps up; zero past the grid's top)."""
    up = jnp.concatenate([amp[..., per_octave:], jnp.zeros_like(amp[..., :per_octave])], axis=-1)
    return amp + harmonic * up


def log_prior(freqs: Float[ArrayLike, " n"], centre_hz, sd_octaves: float) -> Float[Array, " n"]:
    """Log of a log-normal preference (unnormalised), in octaves from `centre_hz`."""
    return -0.5 * (jnp.log2(freqs / centre_hz) / sd_octaves) ** 2


def salience(amp: Float[Array, "time n"], freqs: Float[Array, " n"],
             settings: ResonatorSettings, ts: Float[Array, " time"] | None = None
             ) -> Float[Array, "time n"]:
    """Beat salience of each oscillator at each time:
    $(\\hat a_k + h \\hat a_{k+\\text{octave}}) f_k^{-p} e^{-\\log_2^2(f_k/f_p) / 2\\sigma^2}$
    with $\\hat a_k = |z_k| / (1 - e^{-|\\alpha| f_k \\max(t, t_f)})$ the amplitude
    corrected for its build-up when `settings.buildup_floor` $t_f$ is set (and `ts` given),
    else $\\hat a_k = |z_k|$."""
    s = settings
    if s.buildup_floor is not None:
        if ts is None:
            raise ValueError("The build-up correction needs the times ts of the amplitudes.")
        t = jnp.maximum(ts, s.buildup_floor)[:, None]
        amp = amp / (1 - jnp.exp(-abs(s.alpha) * freqs[None, :] * t))
    prior = jnp.exp(log_prior(freqs, s.prior_f, s.prior_sd))
    return octave_salience(amp, s.per_octave, s.harmonic) * (freqs ** (-s.tilt) * prior)[None, :]


def track_peak(score: Float[Array, "time n"], *, search: int, hysteresis: float,
               start: Int[ArrayLike, ""] | None = None) -> Int[Array, " time"]:
    """The causally tracked peak of a positive salience `score` (grid index per time).

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


def band_phasor(zs: Complex[Array, "time n"], weights: Float[Array, "time n"], *,
                unit_each: bool = False) -> Complex[Array, " time"]:
    """The unit phasor of $\\sum_k w_k z_k$ (of $\\sum_k w_k z_k / |z_k|$ with
    `unit_each`), 0 where the sum is 0: the phase of the oscillators in the band, at
    unit strength."""
    if unit_each:
        zs, _ = unit_phasor(zs)
    mix = jnp.sum(to_complex(weights.astype(jnp.real(zs).dtype), zs.dtype) * zs, axis=-1)
    phasor, _ = unit_phasor(mix)
    return phasor


def weighted_mean(zs: Complex[Array, "time n"], weights: Float[Array, "time n"]
                  ) -> Complex[Array, " time"]:
    """$\\sum_k w_k z_k / \\sum_k w_k$ (0 where the weights sum to 0)."""
    total = jnp.sum(weights, axis=-1)
    return jnp.sum(weights * zs, axis=-1) / jnp.where(total > 0, total, 1.0)


def power_weights(zs: Complex[Array, "time n"], p: float) -> Float[Array, "time n"]:
    """$(|z_k| / \\max_j |z_j|)^p$: weights that follow the strongest resonance (0 for a
    bank at rest). Normalising by the largest amplitude first keeps $|z|^p$ from under-
    or overflowing."""
    r = jnp.abs(zs)
    peak = jnp.max(r, axis=-1, keepdims=True)
    return (r / jnp.where(peak > 0, peak, 1.0)) ** p
