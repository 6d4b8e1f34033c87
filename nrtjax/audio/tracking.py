"""Beat tracking the NRT way: a GrFNN resonates with the onset envelope, its complex
output at the pulse forces an ASHLE motor oscillator, whose phase is the beat clock.

Why the detour through the GrFNN: ASHLE does not entrain to a raw onset envelope (a real
pulse train; 11% of songs locked, docs/concepts.md, ASHLE). It locks to a forcing
that carries the beat phase, like a complex metronome $e^{i 2\\pi t/T}$. A linear,
damped GrFNN layer driven by the envelope is a constant-Q bank of resonators (Scheirer
1998; Large, Almonte & Velasco 2010): the oscillator at the beat rate $f$ converges to
$z \\propto X(f) e^{i 2 \\pi f t}$, the envelope's Fourier component at the beat with its
phase. The forcing is the amplitude-weighted average of the unit phasors of the
oscillators around the pulse, a causal function of the GrFNN state at each instant.

Everything here runs as jitted fixed-size chunks (`nrt.simulate` on each chunk, state
carried across chunks), so memory is bounded by the chunk length, not the recording.
"""

from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

from .._signal import Signal
from .._simulate import simulate
from ..analysis import resonance_peak
from ..models import ASHLE, ASHLEState, GrFNN
from ..models.ashle import unit_phasor


class TrackerSettings(NamedTuple):
    """Settings of the resonance + motor tracker (defaults tuned on the dev set only).

    - `fmin`, `per_octave`, `octaves`: the GrFNN grid, `fmin * 2**(j / per_octave)`.
    - `alpha`: GrFNN damping (frequency-scaled; the resonance is `|alpha| f / pi` Hz wide).
    - `harmonic`: weight of the oscillator one octave up in a frequency's salience (a beat
        is supported by its subdivisions).
    - `prior_bpm`, `prior_octaves`: log-normal tempo preference (centre, s.d. in octaves).
    - `acf_weight`, `acf_harmonics`: weight (an exponent) of the envelope's autocorrelation
        at the beat period and its first `acf_harmonics` multiples in the tempo score
        (0 turns it off; see [`periodicity`][]).
    - `band_octaves`: s.d. of the band around the tempo that forms the forcing.
    - `sharpness`: exponent on the salience in the band weights.
    - `lambda1`, `lambda2`, `gamma`: ASHLE frequency learning, elasticity, sensory pull.
    - `bpm_range`: tempi (BPM) that can be reported.
    """

    fmin: float = 0.5
    per_octave: int = 24
    octaves: int = 4
    alpha: float = -0.1
    harmonic: float = 0.5
    prior_bpm: float = 120.0
    prior_octaves: float = 0.5
    acf_weight: float = 1.0
    acf_harmonics: int = 4
    band_octaves: float = 0.1
    sharpness: float = 4.0
    lambda1: float = 0.5
    lambda2: float = 0.5
    gamma: float = 0.02
    bpm_range: tuple[float, float] = (40.0, 240.0)

    def freqs(self) -> np.ndarray:
        return self.fmin * 2.0 ** (np.arange(self.per_octave * self.octaves + 1) / self.per_octave)


class Tracking(NamedTuple):
    """The tracker's output on the envelope's grid (`ts`, seconds).

    - `phase`, `freq`, `amp`: ASHLE motor phase (rad), frequency (Hz) and amplitude |z|.
    - `forcing_phase`: phase of the GrFNN forcing that drives ASHLE.
    - `tempo_hz`: the global tempo (peak of the time-averaged salience profile).
    - `freqs`, `profile_ts`, `profile`: the GrFNN grid and its amplitude |z| averaged in
        frames of `profile_ts` (for the figure), shape `(frames, n)`.
    """

    ts: np.ndarray
    phase: np.ndarray
    freq: np.ndarray
    amp: np.ndarray
    forcing_phase: np.ndarray
    tempo_hz: float
    freqs: np.ndarray
    profile_ts: np.ndarray
    profile: np.ndarray


def resonator_bank(settings: TrackerSettings) -> GrFNN:
    """The GrFNN layer: linear, damped oscillators on a log grid (eps = 0, beta = 0)."""
    return GrFNN(settings.freqs(), alpha=settings.alpha, beta1=0.0, beta2=0.0, eps=0.0,
                 input="linear", weight=1.0)


def salience(amp: Float[Array, "*t n"], per_octave: int, harmonic: float) -> Float[Array, "*t n"]:
    """Beat salience: each oscillator's amplitude plus `harmonic` times the amplitude one
    octave above (zero past the grid's top)."""
    up = jnp.concatenate([amp[..., per_octave:], jnp.zeros_like(amp[..., :per_octave])], axis=-1)
    return amp + harmonic * up


def log_prior(freqs: Float[Array, " n"], centre_hz, sd_octaves: float) -> Float[Array, " n"]:
    """Log of a log-normal preference over tempo (in octaves from `centre_hz`)."""
    return -0.5 * (jnp.log2(freqs / centre_hz) / sd_octaves) ** 2


def band_forcing(
    zs: Complex[Array, "t n"], freqs: Float[Array, " n"], centre_hz, settings: TrackerSettings
) -> Complex[Array, " t"]:
    """The phase-carrying forcing: unit phasor of the salience-weighted oscillators
    in a band around `centre_hz` (causal: each instant uses only that instant's state)."""
    amp = jnp.abs(zs)
    sal = salience(amp, settings.per_octave, settings.harmonic)
    band = log_prior(freqs, centre_hz, settings.band_octaves)
    logw = settings.sharpness * jnp.log(sal + 1e-12) + band[None, :]
    w = jax.nn.softmax(logw, axis=-1)
    units, _ = unit_phasor(zs)
    mix = jnp.sum(w.astype(zs.dtype) * units, axis=-1)
    forcing, _ = unit_phasor(mix)
    return forcing


@eqx.filter_jit
def _bank_chunk(net: GrFNN, xs: Float[Array, " t"], z0: Complex[Array, " n"], fs: float,
                frame: int) -> tuple[Complex[Array, " n"], Float[Array, "f n"]]:
    sig = Signal.sampled(xs, fs)
    ys = simulate(net, sig, dt=1.0 / fs, y0=z0).ys
    amp = jnp.abs(ys[1:])
    return ys[-1], amp.reshape(-1, frame, amp.shape[-1]).mean(axis=1)


@eqx.filter_jit
def _track_chunk(net: GrFNN, motor: ASHLE, xs: Float[Array, " t"], z0, y0: ASHLEState,
                 fs: float, centre_hz, settings: TrackerSettings):
    sig = Signal.sampled(xs, fs)
    zs = simulate(net, sig, dt=1.0 / fs, y0=z0).ys
    forcing = band_forcing(zs, net.freqs, centre_hz, settings)
    # Forward Euler, ASHLE's reference integrator (Roman et al. 2023). Diffrax's
    # Runge-Kutta solvers reject ASHLE's mixed complex/real state (stage-buffer dtype).
    ys = simulate(motor, Signal.sampled(forcing, fs), dt=1.0 / fs, y0=y0,
                  solver=diffrax.Euler()).ys
    last = jax.tree_util.tree_map(lambda a: a[-1], ys)
    return zs[-1], last, ys, jnp.angle(forcing)


def _chunks(xs: np.ndarray, size: int) -> list[np.ndarray]:
    """Overlapping chunks of `size + 1` samples (each starts at the previous one's end),
    the last padded with zeros so that every chunk has the same shape (one compile)."""
    n = xs.shape[0] - 1
    count = max(1, -(-n // size))
    padded = np.concatenate([xs, np.zeros(count * size + 1 - xs.shape[0])])
    return [padded[i * size: i * size + size + 1] for i in range(count)]


def periodicity(envelope: np.ndarray, fs: float, freqs: np.ndarray, *,
                harmonics: int = 2, half_width: float = 1 / 48) -> np.ndarray:
    """How strongly the envelope repeats at each period `1 / freqs`: its normalised,
    unbiased autocorrelation $r(\\tau) = \\frac{1}{N - \\tau} \\sum_t e_t e_{t+\\tau} / r(0)$
    ($e$ the envelope minus its mean, $\\tau$ in frames), the largest value within
    `half_width` octaves of each lag $h f_s / f$, averaged over $h = 1..$`harmonics`
    (the tolerance matches the resonator grid, 1/24 octave: onset peaks are a frame or
    two wide, so the autocorrelation is too; lags past the envelope count as 0).

    The resonance (a Fourier-like measure) is also large at multiples of the beat rate,
    the subdivisions; the autocorrelation is also large at multiples of the beat period,
    the bars, and it is low at a subdivision whose off-beat events are weaker than the
    beats. Their product peaks at the level both support (Peeters 2007; the same idea as
    Ellis 2007's and librosa's autocorrelation tempo with a log-normal prior).

    **References:** Peeters, G. (2007). Template-based estimation of time-varying tempo.
    EURASIP J. Adv. Signal Process. 2007:067215.

    **Returns:** shape `freqs.shape`, values in [-1, 1].
    """
    e = np.asarray(envelope, np.float64).reshape(-1)
    e = e - e.mean()
    n = e.size
    spec = np.fft.rfft(e, 2 * n)
    ac = np.fft.irfft(np.abs(spec) ** 2, 2 * n)[:n] / (n - np.arange(n))
    ac = np.append(ac / max(ac[0], 1e-300), 0.0)  # index n: past the end
    f = np.asarray(freqs, np.float64).reshape(-1)
    out = np.zeros(f.size)
    for h in range(1, harmonics + 1):
        lo = np.clip(np.floor(h * fs / f * 2.0 ** -half_width), 1, n).astype(int)
        hi = np.clip(np.ceil(h * fs / f * 2.0 ** half_width), 1, n).astype(int)
        out += [ac[a:b + 1].max() for a, b in zip(lo, hi)]
    return (out / harmonics).reshape(np.shape(freqs))


def global_tempo(profile: np.ndarray, freqs: np.ndarray, settings: TrackerSettings,
                 acf: np.ndarray | None = None) -> float:
    """The tempo (Hz) at the peak of the time-averaged salience times the tempo prior,
    times `acf ** settings.acf_weight` when the envelope's [`periodicity`][] `acf` is
    given (clipped below at 1e-3: a period the envelope does not repeat at scores low)."""
    mean_amp = jnp.asarray(profile.mean(axis=0))
    sal = salience(mean_amp, settings.per_octave, settings.harmonic)
    f = jnp.asarray(freqs)
    lo, hi = settings.bpm_range[0] / 60.0, settings.bpm_range[1] / 60.0
    score = jnp.log(sal + 1e-12) + log_prior(f, settings.prior_bpm / 60.0, settings.prior_octaves)
    if acf is not None and settings.acf_weight > 0:
        score = score + settings.acf_weight * jnp.log(jnp.maximum(jnp.asarray(acf), 1e-3))
    score = jnp.where((f >= lo) & (f <= hi), score, -jnp.inf)
    return float(resonance_peak(f, jnp.exp(score - jnp.max(score))))


def track(envelope: np.ndarray, fs: float, *, settings: TrackerSettings = TrackerSettings(),
          chunk_s: float = 20.0, progress=None) -> Tracking:
    """Run the tracker over an onset envelope sampled at `fs` Hz.

    Two passes over fixed-size chunks: the GrFNN alone gives the time-averaged amplitude
    profile and, with the envelope's autocorrelation ([`periodicity`][]), the global tempo
    (the centre of the forcing band and ASHLE's spontaneous rate $f_0$); then GrFNN -> forcing -> ASHLE, each causal, chunk by chunk.

    **Arguments:**

    - `envelope`: onset envelope, shape `(frames,)`, finite and not all zero.
    - `fs`: its frame rate in Hz.
    - `settings`: a [`TrackerSettings`][].
    - `chunk_s`: chunk length in seconds (memory and compile size; results do not depend
        on it beyond rounding).
    - `progress`: optional callable `progress(done_chunks, total_chunks)`.

    **Returns:** a [`Tracking`][].
    """
    env = np.asarray(envelope, dtype=np.float64).reshape(-1)
    if env.size < 2 or not np.all(np.isfinite(env)) or not np.any(env > 0):
        raise ValueError("The onset envelope is empty, non-finite or flat: there are no onsets "
                         "to track (is the recording silent or constant?).")
    env = env / (np.std(env) + 1e-12)  # the bank is linear: only the scale of |z| changes
    frame = max(1, int(round(fs / 4)))
    size = frame * max(1, int(round(chunk_s * fs / frame)))
    chunks = _chunks(env, size)
    net = resonator_bank(settings)
    tick = (lambda i: progress(i, 2 * len(chunks))) if progress is not None else (lambda i: None)
    n_frames = max(1, (env.size - 1) // frame)
    profile = _profile_pass(net, chunks, fs, frame, tick)[:n_frames]
    acf = periodicity(env, fs, settings.freqs(), harmonics=settings.acf_harmonics)
    tempo = global_tempo(profile, settings.freqs(), settings, acf)
    zm, freq, fphase = _motor_pass(net, chunks, fs, tempo, settings,
                                   lambda i: tick(len(chunks) + i))
    n = env.size
    return Tracking(
        ts=np.arange(n) / fs, phase=np.angle(zm[:n]), freq=freq[:n], amp=np.abs(zm[:n]),
        forcing_phase=fphase[:n], tempo_hz=tempo, freqs=settings.freqs(),
        profile_ts=(np.arange(n_frames) + 0.5) * frame / fs, profile=profile,
    )


def _profile_pass(net: GrFNN, chunks: list, fs: float, frame: int, tick) -> np.ndarray:
    """The GrFNN alone, chunk by chunk: its amplitude averaged in frames of `frame`."""
    z = net.initial_state()
    profile = []
    for i, c in enumerate(chunks):
        z, prof = _bank_chunk(net, jnp.asarray(c), z, fs, frame)
        profile.append(np.asarray(prof))
        tick(i + 1)
    return np.concatenate(profile)


def _motor_pass(net: GrFNN, chunks: list, fs: float, tempo: float, settings: TrackerSettings,
                tick) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GrFNN -> forcing -> ASHLE, chunk by chunk with both states carried across."""
    motor = ASHLE(f0=tempo, lambda1=settings.lambda1, lambda2=settings.lambda2,
                  gamma=settings.gamma)
    y = motor.initial_state()
    z = net.initial_state()
    zs, fs_, ph = [], [], []
    for i, c in enumerate(chunks):
        z, y, ys, fphase = _track_chunk(net, motor, jnp.asarray(c), z, y, fs,
                                        jnp.asarray(tempo), settings)
        skip = 0 if i == 0 else 1  # a chunk's first sample is the previous chunk's last
        zs.append(np.asarray(ys.z[skip:]))
        fs_.append(np.asarray(ys.f[skip:]))
        ph.append(np.asarray(fphase[skip:]))
        tick(i + 1)
    return np.concatenate(zs), np.concatenate(fs_), np.concatenate(ph)
