"""The oscillator decoder: a beat activation drives a GrFNN resonator bank and ASHLE.

1. **Tempo and metrical level.** The beat activation $a(t)$ drives a bank of damped
   linear oscillators ([`nrtjax.audio.resonator`][]); its time-averaged amplitude $A(f)$
   is large at the beat rate $F$ and at its multiples $2F, 3F, \\dots$ (a pulse train's
   harmonics), small below $F$. The autocorrelation of $a$ at lag $1/f$, $R_a(f)$
   ([`nrtjax.audio.tracking.periodicity`][] with one lag), is large at $F$ and its
   sub-multiples $F/2, F/3$, small above: at $2F$ it compares each beat with the
   off-beat half a period later, which a network trained on beats marks weakly. (Lags
   $2/f, 3/f, \\dots$ would add nothing against $2F$: half of them are whole beat
   periods.) Their product peaks at $F$. The downbeat activation $d(t)$ decides between
   the levels that remain: a beat level $f$ is consistent with the bars when $d$ repeats
   at $m$ beats for a meter $m \\in \\{2, 3, 4\\}$ (2/4 and 6/8 are two beats a bar, the
   beat of compound meters being the dotted quarter), i.e. its autocorrelation at lag
   $m/f$ is high. The tempo score is
   $$S(f) = \\log A(f) + w_R \\log R_a(f) + w_d \\log \\max_m R_d(f/m)
   - \\tfrac12 \\log_2^2(f/f_p) / \\sigma_p^2 + w_T \\log p_T(f),$$
   and the global tempo $f^*$ is its maximum; $p_T$ is the network's tempo head (the
   activation's `tempo`, when it has one; [`tempo_log_prior`][nrtjax.beats.network.tempo_log_prior]),
   offline only. (The level must resonate itself: crediting
   it with its octave's amplitude, $A(f) + h A(2f)$ as the tracked salience of step 2
   does, gives $3F/2$ the eighth notes of a compound meter, at $3F$, and 6/8 at 60 BPM
   came out at 90 BPM.)
2. **Phase.** At each frame the bank's salience times a log-normal band of
   `level_octaves` around $f^*$ is tracked causally
   ([`nrtjax.audio.resonator.track_peak`][]); the unit phasor of the oscillators around
   the tracked peak (a Gaussian band) forces ASHLE (Roman et al. 2023) with $f_0 = f^*$,
   which follows tempo changes by its frequency learning. Both integrate with RK4
   ([`nrtjax.simulate`][]) at the activation's frame rate.
3. **Beats.** Offline (`phase="dp"`, the default), a dynamic programme over the whole
   clip ([`dp_beats`][]) places the beats where the activation is high and the intervals
   stay close to the oscillators' tempo curve $P(t)$ ([`tempo_curve`][]): the global
   tempo $f^*$ with the trend of ASHLE's frequency over the clip (a tempo ramp). ASHLE's
   own phase slips by half a beat for a few beats where eighth notes make the activation
   between the beats nearly as high as on them (solo melodies); the programme weighs the
   whole clip at once and keeps the phase. With `phase="ashle"`, and always in the causal
   mode, the beats come from ASHLE's motor phase $\\varphi(t)$, which locks to the beat
   with a constant lag $\\theta$, estimated as the activation-weighted circular mean
   $\\theta = \\arg \\sum_t a(t) e^{i\\varphi(t)}$ (after `lock_s`): beats are the times
   where $\\varphi - \\theta$ crosses $0 \\bmod 2\\pi$. Either way, each beat is then
   moved to the activation's peak within `refine_s` when there is one above `threshold`,
   and dropped where the activation has been silent for `silence_beats` beats. A beat with
   no peak to move to is filled in: offline, spread evenly between the nearest moved beats
   before and after it (the tempo taken as constant across the gap); causally, the
   interval of the last two moved beats continued, within `refine_s` of the oscillator's
   time.
4. **Downbeats.** Each beat gets the downbeat activation's maximum near it, $D_k$; a
   Viterbi pass over the beats with states (meter $m$, beat in bar) and observation
   $D_k$ on the bar's first beat and $1 - D_k$ elsewhere picks the bar phase (and the
   meter), with a small probability `bar_switch` of restarting the bar.

Offline ([`decode_oscillator`][]) runs step 2 forward and on the time-reversed
activation and cross-fades the two passes (ASHLE's frequency, or its beat phasor with
`phase="ashle"`) at mid-file, so that the first seconds (before the forward oscillator
has locked) use the backward pass; the causal mode
(`causal=True`, the same as [`StreamingDecoder`][]) uses the forward pass with a tempo
and lag estimated from the past only.

**References:**

Ellis, D. P. W. (2007). Beat tracking by dynamic programming. J. New Music Research
36(1), 51-60.

Roman, I. R., Roman, A. S., Kim, J. C. & Large, E. W. (2023). Hebbian learning with
elasticity explains how the spontaneous motor tempo affects music performance
synchronization. PLOS Comput. Biol. 19(6), e1011154.

Large, E. W., Almonte, F. V. & Velasco, M. J. (2010). A canonical model for gradient
frequency neural networks. Physica D 239(12), 905-911.
"""

from typing import TYPE_CHECKING, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._signal import Signal
from .._simulate import simulate
from ..analysis import resonance_peak
from ..models import ASHLE, ASHLEState
from ._types import BeatActivation, BeatTrack
from .hmm import check_activation

if TYPE_CHECKING:
    from ..audio import resonator as rs

# nrtjax.audio (the resonator bank, `periodicity`) is imported inside the functions that use
# it: loading it loads soundfile and SciPy, which `import nrtjax.beats` does not.


class OscillatorSettings(NamedTuple):
    """Settings of the oscillator decoder.

    - `fmin`, `per_octave`, `octaves`: the bank's grid, `fmin * 2**(j / per_octave)` Hz.
    - `alpha`: the bank's damping (time constant $1/(|\\alpha| f)$).
    - `harmonic`: weight $h$ of the octave above in the tracked salience (step 2; the
        tempo score $S$ uses $A(f)$ alone).
    - `prior_bpm`, `prior_octaves`: the log-normal tempo preference $f_p$, $\\sigma_p$.
    - `acf_weight`, `acf_harmonics`: $w_R$ and the lags ($1..H$ periods) of $R_a$.
    - `downbeat_weight`: $w_d$; `meters`: beats per bar tried for the downbeats.
    - `tempo_weight`: $w_T$, the weight of the network's tempo head in $S$ (offline,
        for activations that carry one; 1 by default, chosen with the shipped network
        on the validation set, see the beat-tracking guide; 0 turns it off).
    - `downbeat_drive`: the bank and the lag estimate hear $a + c\\,d$ with this $c$ (a
        downbeat is a beat: it marks which pulses of an ambiguous activation are beats).
    - `level_octaves`: s.d. of the band around the global tempo that the tracked peak
        stays in (a tempo ramp moves within it; half or double tempo lies outside).
    - `search`, `hysteresis`: the peak tracking (grid steps; ratio to jump).
    - `band_sigma`: the forcing band's s.d. in grid steps.
    - `lambda1`, `lambda2`, `gamma`, `forcing`: ASHLE's frequency learning, elasticity,
        sensory pull and drive strength.
    - `lock_s`: seconds the oscillator is given to lock (excluded from the lag estimate;
        the length of the forward/backward cross-fade).
    - `refine_s`: half-width of the window in which a beat moves to the activation peak.
    - `threshold`: an activation peak below this does not move a beat, and a beat with
        no activation above it for `silence_beats` beat periods (before it, and within
        `refine_s` after) is dropped.
    - `bar_switch`: probability per beat that the bar restarts (meter or phase change).
    - `bpm_range`: tempi that can be reported.
    - `phase`: where the offline beats come from: `"dp"`, the whole-clip dynamic
        programme of step 3 (default), or `"ashle"`, ASHLE's motor phase (what the
        causal mode always uses).
    - `dp_lambda`: $\\lambda$, the weight of the dynamic programme's period penalty (a
        larger value holds the beat period closer to the oscillators' tempo curve).
    """

    fmin: float = 0.5
    per_octave: int = 24
    octaves: float = 4.0
    alpha: float = -0.1
    harmonic: float = 0.5
    prior_bpm: float = 120.0
    prior_octaves: float = 1.0
    acf_weight: float = 1.0
    acf_harmonics: int = 1
    downbeat_weight: float = 1.0
    tempo_weight: float = 1.0
    meters: tuple[int, ...] = (2, 3, 4)
    downbeat_drive: float = 1.0
    level_octaves: float = 0.3
    search: int = 2
    hysteresis: float = 1.5
    band_sigma: float = 1.5
    lambda1: float = 0.5
    lambda2: float = 1.0
    gamma: float = 0.02
    forcing: float = 3.0
    lock_s: float = 4.0
    refine_s: float = 0.05
    threshold: float = 0.1
    silence_beats: float = 2.5
    bar_switch: float = 0.01
    bpm_range: tuple[float, float] = (40.0, 240.0)
    phase: str = "dp"
    dp_lambda: float = 20.0

    def resonator(self) -> "rs.ResonatorSettings":
        """The bank and its read-out as [`nrtjax.audio.resonator.ResonatorSettings`][] (the
        tempo prior of the tracked peak is set per call, around $f^*$)."""
        from ..audio import resonator as rs

        return rs.ResonatorSettings(
            fmin=self.fmin, per_octave=self.per_octave, octaves=self.octaves, alpha=self.alpha,
            harmonic=self.harmonic, prior_f=self.prior_bpm / 60.0, prior_sd=self.level_octaves,
            search=self.search, hysteresis=self.hysteresis, band_sigma=self.band_sigma)

    def freqs(self) -> np.ndarray:
        return self.resonator().freqs()

    def check(self) -> None:
        lo, hi = self.bpm_range
        if not (0 < lo < hi):
            raise ValueError(f"bpm_range must be (low, high) with 0 < low < high, "
                             f"got {self.bpm_range}.")
        if hi / 60.0 * 2 > self.freqs()[-1] or lo / 60.0 < self.fmin:
            raise ValueError(f"The bank's grid ({self.fmin:.3g}-{self.freqs()[-1]:.3g} Hz) must "
                             f"reach from bpm_range's low tempo to twice its high tempo "
                             f"(the salience's octave); widen fmin/octaves.")
        if self.alpha >= 0 or self.refine_s < 0 or self.lock_s <= 0 or not self.meters:
            raise ValueError("Need alpha < 0, refine_s >= 0, lock_s > 0 and at least one meter.")
        if self.phase not in ("dp", "ashle"):
            raise ValueError(f"phase={self.phase!r}: use 'dp' (the whole-clip dynamic programme) "
                             f"or 'ashle' (ASHLE's motor phase).")
        if not self.dp_lambda >= 0:
            raise ValueError(f"dp_lambda={self.dp_lambda}: the period penalty's weight must be >= 0.")


def global_tempo(mean_amp: np.ndarray, beat: np.ndarray, down: np.ndarray, fps: float,
                 settings: OscillatorSettings, tempo: np.ndarray | None = None) -> float:
    """The global tempo $f^*$ (Hz): the maximum of the tempo score $S(f)$ (module
    docstring) over `bpm_range`, interpolated between grid points."""
    freqs = settings.freqs()
    score = tempo_score(mean_amp, beat, down, fps, settings, tempo)
    lo, hi = settings.bpm_range[0] / 60.0, settings.bpm_range[1] / 60.0
    score = np.where((freqs >= lo) & (freqs <= hi), score, -np.inf)
    return float(resonance_peak(jnp.asarray(freqs), jnp.asarray(np.exp(score - score.max()))))


def tempo_score(mean_amp: np.ndarray, beat: np.ndarray, down: np.ndarray, fps: float,
                settings: OscillatorSettings, tempo: np.ndarray | None = None) -> np.ndarray:
    """$S(f)$ on the bank's grid from its time-averaged amplitude `mean_amp` (`tempo`:
    the tempo head's probabilities, or `None`)."""
    from ..audio import resonator as rs
    from ..audio.tracking import periodicity

    freqs = settings.freqs()
    score = np.log(np.asarray(mean_amp) + 1e-12) + np.asarray(rs.log_prior(freqs, settings.prior_bpm / 60.0,
                                                          settings.prior_octaves))
    if settings.acf_weight > 0:
        acf = periodicity(beat, fps, freqs, harmonics=settings.acf_harmonics)
        score = score + settings.acf_weight * np.log(np.maximum(acf, 1e-3))
    if settings.downbeat_weight > 0 and _informative(down):
        bar = np.max([periodicity(down, fps, freqs / m, harmonics=1) for m in settings.meters],
                     axis=0)
        score = score + settings.downbeat_weight * np.log(np.maximum(bar, 1e-2))
    if tempo is not None and settings.tempo_weight > 0:
        from .network import tempo_log_prior

        score = score + settings.tempo_weight * tempo_log_prior(tempo, 60.0 * freqs)
    return score


def _informative(down: np.ndarray) -> bool:
    return down.size > 1 and float(down.max()) > 0.1 and float(np.std(down)) > 1e-3


@eqx.filter_jit
def _profile_chunk(bank, xs, z0, fps: float):
    zs = simulate(bank, Signal.sampled(xs, fps), dt=1.0 / fps, y0=z0).ys
    return zs[-1], jnp.sum(jnp.abs(zs[1:]), axis=0)


@eqx.filter_jit
def _phase_chunk(bank, motor: ASHLE, xs, z0, peak0, y0: ASHLEState, centre, fps: float,
                 settings: OscillatorSettings):
    """One chunk of GrFNN -> tracked band phasor -> ASHLE, both states carried."""
    from ..audio import resonator as rs

    motor = eqx.tree_at(lambda m: m.f0, motor, jnp.asarray(centre, motor.f0.dtype))
    zs = simulate(bank, Signal.sampled(xs, fps), dt=1.0 / fps, y0=z0).ys
    res = settings.resonator()._replace(prior_f=centre)
    score = rs.salience(jnp.abs(zs), bank.freqs, res)
    peaks = rs.track_peak(score, search=res.search, hysteresis=res.hysteresis, start=peak0)
    forcing = rs.band_phasor(zs, rs.gaussian_band(peaks, bank.freqs.shape[0], res.band_sigma))
    ys = simulate(motor, Signal.sampled(forcing, fps), dt=1.0 / fps, y0=y0).ys
    last = jax.tree_util.tree_map(lambda a: a[-1], ys)
    return zs[-1], peaks[-1], last, ys.z[1:], ys.f[1:], jnp.mean(jnp.abs(zs[1:]), axis=0)


def _chunks(xs: np.ndarray, size: int) -> list[np.ndarray]:
    """Chunks of `size + 1` samples, each starting at the previous one's last sample (the
    state's time), zero-padded at the end so that all have one shape (one compile)."""
    count = max(1, -(-(xs.size - 1) // size))
    padded = np.concatenate([xs, np.zeros(count * size + 1 - xs.size)])
    return [padded[i * size: i * size + size + 1] for i in range(count)]


def mean_amplitude(beat: np.ndarray, fps: float, settings: OscillatorSettings,
                   chunk: int = 2000) -> np.ndarray:
    """The bank's amplitude $|z_k|$ driven by `beat`, averaged over time."""
    bank = settings.resonator().bank()
    z = bank.initial_state()
    total = np.zeros(settings.freqs().size)
    for c in _chunks(beat, chunk):
        z, s = _profile_chunk(bank, jnp.asarray(c), z, fps)
        total += np.asarray(s)
    return total / max(1, beat.size - 1)


def motor_pass(beat: np.ndarray, fps: float, centre_hz: float, settings: OscillatorSettings,
               chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """ASHLE's motor state `z` and frequency `f` (Hz) per frame, forced by the bank's
    band phasor around the tracked peak (starting at `centre_hz`)."""
    freqs = settings.freqs()
    bank = settings.resonator().bank()
    motor = ASHLE(f0=centre_hz, lambda1=settings.lambda1, lambda2=settings.lambda2,
                  gamma=settings.gamma, forcing=settings.forcing)
    z, y = bank.initial_state(), motor.initial_state()
    peak = jnp.asarray(int(np.argmin(np.abs(np.log(freqs / centre_hz)))))
    zm, fm = [np.asarray(y.z)[None]], [np.asarray(y.f)[None]]
    for c in _chunks(beat, chunk):
        z, peak, y, zc, fc, _ = _phase_chunk(bank, motor, jnp.asarray(c), z, peak, y,
                                             jnp.asarray(centre_hz), fps, settings)
        zm.append(np.asarray(zc))
        fm.append(np.asarray(fc))
    n = beat.size
    return np.concatenate(zm)[:n], np.concatenate(fm)[:n]


def lag_phasor(motor_z: np.ndarray, beat: np.ndarray, start: int) -> complex:
    """$e^{-i\\theta}$ with $\\theta = \\arg\\sum_{t \\ge \\text{start}} a(t) e^{i\\varphi(t)}$,
    the motor phase at the beats (1 if there is no activation there)."""
    u = motor_z[start:] / np.maximum(np.abs(motor_z[start:]), 1e-300)
    s = np.sum(beat[start:] * u)
    return complex(np.conj(s) / abs(s)) if abs(s) > 0 else 1.0 + 0j


def phase_crossings_complex(v: np.ndarray, fps: float) -> np.ndarray:
    """Times (s) where the angle of the phasor `v` crosses 0 upwards, interpolated."""
    ang = np.angle(v)
    k = np.flatnonzero((ang[:-1] < 0) & (ang[1:] >= 0) & (ang[1:] - ang[:-1] < np.pi))
    frac = -ang[k] / (ang[k + 1] - ang[k])
    return (k + frac) / fps


def tempo_curve(freq: np.ndarray, centre_hz: float, fps: float, *, start: int = 0) -> np.ndarray:
    """The beat period (frames) per frame for [`dp_beats`][]: the global tempo $f^*$
    with ASHLE's tempo trend, $P(t) = f_s / f^* \\cdot e^{-b\\,(t - \\bar t)}$, where $b$
    is the least-squares slope of $\\log f(t)$ (ASHLE's frequency, frames from `start`
    on). A straight line follows a tempo ramp; ASHLE's excursions while it corrects its
    phase, seconds long, average out of it."""
    t = np.arange(freq.size, dtype=np.float64)
    fit = slice(start, None) if freq.size - start >= 2 else slice(None)
    logf = np.log(np.maximum(freq[fit], 1e-6))
    slope = np.polyfit(t[fit], logf, 1)[0] if logf.size >= 2 else 0.0
    return fps / centre_hz * np.exp(-slope * (t - t[fit].mean()))


def dp_beats(local: np.ndarray, periods: "list[np.ndarray | float]", tightness: float, *,
             envelope: np.ndarray | None = None) -> np.ndarray:
    """Beat frames $b_1 < \\dots < b_K$ maximising
    $$\\sum_k s(b_k) - c \\sum_{k>1} \\min_P \\log^2\\frac{b_k - b_{k-1}}{P(b_k)}$$
    by dynamic programming over frames (Ellis 2007): `local` is the score $s$ of a beat
    at each frame, `periods` the tempo hypotheses $P$ (frames; arrays per frame or
    numbers), each transition taking the one it fits best, and $c$ = `tightness`. An
    interval lies within $[\\min P / 2, 2 \\max P)$; a sequence starts afresh where no
    predecessor adds to its score, and ends at the best frame within one period (of the
    first hypothesis) of the end among the local peaks of `envelope` (default `local`)
    there, or at any frame there if it has none: without the peak condition the last
    frame often wins, carrying the path's whole score though nothing sounds there."""
    n = local.size
    ps = np.stack([np.broadcast_to(np.asarray(p, np.float64), (n,)) for p in periods])
    idx = np.arange(n)
    los = np.maximum(0, (idx - 2 * ps.max(axis=0)).astype(np.int64))
    his = (idx - ps.min(axis=0) / 2).astype(np.int64)
    log_p = np.log(ps)
    log_lag = np.log(np.maximum(idx, 1).astype(np.float64))
    score = np.asarray(local, np.float64).copy()
    back = np.full(n, -1)
    for t in range(1, n):
        lo, hi = los[t], his[t]
        if hi <= lo:
            continue
        # Predecessors lo .. hi - 1, i.e. lags t - lo down to t - hi + 1 (>= 1).
        dev = log_lag[t - lo: t - hi: -1][None, :] - log_p[:, t, None]
        cand = score[lo:hi] - tightness * np.min(dev * dev, axis=0)
        k = int(np.argmax(cand))
        if cand[k] > 0:
            score[t] = local[t] + cand[k]
            back[t] = lo + k
    tail = np.arange(max(0, n - int(ps[0, -1]) - 1), n)
    inner = tail[(tail > 0) & (tail < n - 1)]
    env = np.asarray(local if envelope is None else envelope, np.float64)
    peaks = inner[(env[inner] > env[inner - 1]) & (env[inner] >= env[inner + 1])]
    if peaks.size:
        tail = peaks
    path = [int(tail[np.argmax(score[tail])])]
    while back[path[-1]] >= 0:
        path.append(int(back[path[-1]]))
    return np.asarray(path[::-1], np.int64)


def trim_weak_ends(frames: np.ndarray, beat: np.ndarray) -> np.ndarray:
    """[`dp_beats`][] without its leading and trailing beats that stand out of the
    activation (peak within 2 frames minus the median) by less than half the median beat:
    the programme places a first and a last beat even where only noise marks them."""
    idx = frames.astype(int)
    height = np.array([beat[max(0, f - 2): f + 3].max() for f in idx]) - np.median(beat)
    ok = np.flatnonzero(height >= 0.5 * np.median(height)) if idx.size else idx
    return frames[ok[0]: ok[-1] + 1] if ok.size else frames[:0]


def refine_beats(times: np.ndarray, beat: np.ndarray, fps: float, settings: OscillatorSettings,
                 period_s: float, *, lookahead: bool) -> np.ndarray:
    """Move each beat to the activation's peak within `refine_s` (parabolic
    interpolation) where that peak exceeds `threshold`; drop beats after `silence_beats`
    periods without activation above `threshold` (and, with `lookahead`, before as many
    periods without it: the end of the music); keep beats at least half a period apart.
    With `lookahead`, a beat left at the oscillator's time (no peak to move to) between
    two moved ones is placed by linear interpolation between them (the tempo taken as
    constant across the gap)."""
    out, snapped = snap_beats(times, beat, fps, settings, period_s, lookahead=lookahead)
    if lookahead:
        out = _interpolate_gaps(out, snapped)
    min_gap = 0.5 * period_s
    keep = np.concatenate([[True], np.diff(out) > min_gap]) if out.size else np.zeros(0, bool)
    return out[keep]


def snap_beats(times: np.ndarray, beat: np.ndarray, fps: float, settings: OscillatorSettings,
               period_s: float, *, lookahead: bool) -> tuple[np.ndarray, np.ndarray]:
    """The beats kept by [`refine_beats`][]'s silence rule, each moved to its activation
    peak where there is one, and whether it was moved (no interpolation, no minimum gap)."""
    half = int(round(settings.refine_s * fps))
    back = int(round(settings.silence_beats * period_s * fps))
    out, snapped = [], []
    for t in times:
        c = int(round(t * fps))
        lo, hi = max(0, c - half), min(beat.size, c + half + 1)
        if lo >= hi:
            continue
        if beat[max(0, c - back):hi].max() < settings.threshold:
            continue
        if lookahead and beat[lo:c + back + 1].max() < settings.threshold:
            continue
        j = lo + int(np.argmax(beat[lo:hi]))
        moved = bool(beat[j] >= settings.threshold and lo < j < hi - 1)
        if moved:
            a0, a1, a2 = beat[j - 1], beat[j], beat[j + 1]
            den = a0 - 2 * a1 + a2
            t = (j + (0.5 * (a0 - a2) / den if den < 0 else 0.0)) / fps
        out.append(t)
        snapped.append(moved)
    return np.asarray(out, np.float64), np.asarray(snapped, bool)


def _interpolate_gaps(times: np.ndarray, snapped: np.ndarray) -> np.ndarray:
    """Beats not `snapped` to the activation, between two that are, spread evenly in
    between (by their index: k missing beats divide the gap into k + 1 intervals)."""
    anchors = np.flatnonzero(snapped)
    if anchors.size < 2:
        return times
    out = times.copy()
    idx = np.arange(times.size)
    inside = (~snapped) & (idx > anchors[0]) & (idx < anchors[-1])
    out[inside] = np.interp(idx[inside], anchors, times[anchors])
    return out


def assign_downbeats(beats: np.ndarray, down: np.ndarray, fps: float,
                     settings: OscillatorSettings) -> np.ndarray:
    """The downbeats among `beats` (Viterbi over (meter, beat in bar); module docstring)."""
    if beats.size == 0 or not _informative(down):
        return beats[:0]
    half = max(1, int(round(settings.refine_s * fps)))
    idx = np.clip(np.round(beats * fps).astype(int), 0, down.size - 1)
    obs = np.array([down[max(0, i - half): i + half + 1].max() for i in idx])
    states = [(m, p) for m in settings.meters for p in range(m)]
    path = bar_viterbi(obs, states, settings.bar_switch)
    return beats[np.asarray([states[s][1] == 0 for s in path])]


def bar_viterbi(obs: np.ndarray, states: list[tuple[int, int]], switch: float) -> np.ndarray:
    """Most probable (meter, position) per beat: position advances by one (mod meter)
    with probability `1 - switch`, else any state; emission $D_k$ at position 0 and
    $1 - D_k$ elsewhere."""
    n = len(states)
    nxt = np.array([states.index((m, (p + 1) % m)) for m, p in states])
    trans = np.full((n, n), np.log(switch / n))
    trans[np.arange(n), nxt] = np.logaddexp(np.log1p(-switch), np.log(switch / n))
    first = np.array([p == 0 for _, p in states])
    d = np.clip(obs, 1e-6, 1 - 1e-6)
    emit = np.where(first[None, :], np.log(d)[:, None], np.log1p(-d)[:, None])
    delta = emit[0] - np.log(n)
    back = np.zeros((obs.size, n), int)
    for k in range(1, obs.size):
        cand = delta[:, None] + trans
        back[k] = np.argmax(cand, axis=0)
        delta = cand[back[k], np.arange(n)] + emit[k]
    path = np.empty(obs.size, int)
    path[-1] = int(np.argmax(delta))
    for k in range(obs.size - 1, 0, -1):
        path[k - 1] = back[k, path[k]]
    return path


def decode_oscillator(act: BeatActivation, *, settings: OscillatorSettings = OscillatorSettings(),
                      backward: bool = True, causal: bool = False) -> BeatTrack:
    """Beats and downbeats from an activation, decoded by the GrFNN and ASHLE (offline).

    **Arguments:**

    - `act`: a [`nrtjax.beats.BeatActivation`][].
    - `settings`: an [`OscillatorSettings`][].
    - `backward`: also run the oscillators on the time-reversed activation; the first
        half of the file takes its beat phase from the backward pass, the second from the
        forward one (cross-faded over `lock_s`), so neither pass's locking transient
        shows.
    - `causal`: decode as [`StreamingDecoder`][] does (past only, tempo estimated as it
        goes); `backward` is then ignored.

    **Returns:** a [`nrtjax.beats.BeatTrack`][] with `decoder="oscillator"`; `tempo_bpm`
    is the global tempo $f^*$.

    **Raises:** `ValueError` for an empty, non-finite or out-of-range activation or
    inconsistent settings.
    """
    settings.check()
    beat, down, fps = check_activation(act)
    if causal:
        dec = StreamingDecoder(fps, settings=settings)
        dec.push(beat, down)
        dec.flush()
        return dec.track
    if beat.max() < settings.threshold:
        return BeatTrack(np.zeros(0), np.zeros(0), float("nan"), "oscillator")
    drive = beat + settings.downbeat_drive * down
    centre = global_tempo(mean_amplitude(drive, fps, settings), beat, down, fps, settings,
                          act.tempo)
    start = min(int(settings.lock_s * fps), beat.size // 2)
    zf, ff = motor_pass(drive, fps, centre, settings)
    if backward:
        zb, fb = motor_pass(drive[::-1].copy(), fps, centre, settings)
        # Cross-fade at mid-file, where both passes have had the longest to lock.
        ramp = np.clip((np.arange(beat.size) - beat.size / 2) / (settings.lock_s * fps) + 0.5,
                       0.0, 1.0)
    if settings.phase == "dp":
        freq = ramp * ff + ramp[::-1] * fb[::-1] if backward else ff
        period = tempo_curve(freq, centre, fps, start=0 if backward else start)
        times = trim_weak_ends(dp_beats(beat, [period], settings.dp_lambda), beat) / fps
    else:
        v = zf / np.maximum(np.abs(zf), 1e-300) * lag_phasor(zf, drive, start)
        if backward:
            vb = zb / np.maximum(np.abs(zb), 1e-300) * lag_phasor(zb, drive[::-1], start)
            v = ramp * v + ramp[::-1] * np.conj(vb[::-1])
        times = phase_crossings_complex(v, fps)
    beats = refine_beats(times, beat, fps, settings, 1.0 / centre, lookahead=True)
    downs = assign_downbeats(beats, down, fps, settings)
    return BeatTrack(beats, downs, 60.0 * centre, "oscillator")


class StreamingDecoder:
    """The oscillator decoder, causal and block by block, with a fixed latency.

    Activation frames are buffered and processed in hops of `hop_s`: the bank, the
    tracked peak and ASHLE advance by RK4 with their states carried across hops. Every
    `tempo_s` the tempo score $S(f)$ (module docstring) is recomputed from the past only: the
    bank amplitude's running mean (time constant `memory_s`) and the autocorrelations of
    the last `memory_s` seconds of activation; the centre $f^*$ follows its maximum, and
    moves to another metrical level only when that scores `settings.hysteresis` times
    better (ASHLE's frequencies are then rescaled by the same ratio). The lag $\\theta$ is
    a leaky activation-weighted mean (time constant `memory_s`). A beat at time $t$ is
    final, refined to the activation peak within `refine_s`, once the input reaches
    $t +$ `refine_s`; refinement moves it by at most `refine_s`, so every beat is
    reported at most `latency_s = hop_s + 2 refine_s` after its reported time.
    Downbeats: the bar Viterbi's forward pass, decided per beat.

    The output depends only on the activation, not on how it is cut into blocks:
    `decode_oscillator(act, causal=True)` is this decoder fed the whole activation.

    !!! example

        ```python
        dec = StreamingDecoder(fps=100.0)
        for beat, down in blocks:
            new = dec.push(beat, down)  # a BeatTrack of the beats finalised by this block
        last = dec.flush()
        ```
    """

    def __init__(self, fps: float = 100.0, *, settings: OscillatorSettings = OscillatorSettings(),
                 hop_s: float = 0.2, memory_s: float = 8.0, tempo_s: float = 0.2):
        """**Arguments:**

        - `fps`: the activation's frame rate.
        - `settings`: an [`OscillatorSettings`][].
        - `hop_s`: the processing hop (seconds); part of the latency.
        - `memory_s`: how far back the tempo and the lag are estimated (seconds).
        - `tempo_s`: how often the tempo score is recomputed (rounded to whole hops).
        """
        settings.check()
        if not (fps > 0 and hop_s > 0 and memory_s > 0):
            raise ValueError(f"Need fps, hop_s and memory_s > 0, got {fps}, {hop_s}, {memory_s}.")
        self.fps, self.settings = float(fps), settings
        self.hop = max(1, int(round(hop_s * fps)))
        self.memory = max(self.hop, int(round(memory_s * fps)))
        # A crossing at t is final at t + refine_s (rounded up to a hop) and may move back
        # by refine_s to its activation peak.
        self.latency_s = self.hop / self.fps + 2 * settings.refine_s
        self._tempo_every = max(1, int(round(tempo_s * fps / self.hop)))
        self._hops = 0
        freqs = settings.freqs()
        self._bank = settings.resonator().bank()
        self._centre = settings.prior_bpm / 60.0
        self._motor = ASHLE(f0=self._centre, lambda1=settings.lambda1, lambda2=settings.lambda2,
                            gamma=settings.gamma, forcing=settings.forcing)
        self._z, self._y = self._bank.initial_state(), self._motor.initial_state()
        self._peak = jnp.asarray(int(np.argmin(np.abs(np.log(freqs / self._centre)))))
        self._mean_amp = np.zeros(freqs.size)
        self._lag_sum = 0j
        self._beat = np.zeros(0)
        self._down = np.zeros(0)
        self._v = np.zeros(0, complex)   # beat phasor per processed frame
        self._done = 0                   # frames processed by the oscillators
        self._scanned = 0                # frames searched for phase crossings
        self._last_input = 0.0           # the drive at frame done - 1 (the state's time)
        self._beats: list[float] = []
        self._anchors: list[int] = []    # indices of the last two beats moved to a peak
        self._downs: list[float] = []
        self._bar = None

    @property
    def track(self) -> BeatTrack:
        """Every beat finalised so far, with the current tempo."""
        return BeatTrack(np.asarray(self._beats), np.asarray(self._downs), 60.0 * self._centre,
                         "oscillator")

    def push(self, beat, downbeat) -> BeatTrack:
        """Feed the next activation frames (any number); returns the beats (and
        downbeats) finalised by them."""
        act = BeatActivation(np.atleast_1d(beat), np.atleast_1d(downbeat), self.fps)
        b, d = (np.zeros(0), np.zeros(0)) if np.size(beat) == 0 else _check_block(act)
        self._beat = np.concatenate([self._beat, b])
        self._down = np.concatenate([self._down, d])
        n0, m0 = len(self._beats), len(self._downs)
        while self._beat.size - self._done >= self.hop:
            self._advance()
            self._emit(final=False)
        return self._since(n0, m0)

    def flush(self) -> BeatTrack:
        """End of input: process the frames left (the last hop zero-padded) and return
        the beats finalised by them."""
        n0, m0 = len(self._beats), len(self._downs)
        if self._beat.size > self._done:
            self._advance()
        self._emit(final=True)
        return self._since(n0, m0)

    def _since(self, n0: int, m0: int) -> BeatTrack:
        return BeatTrack(np.asarray(self._beats[n0:]), np.asarray(self._downs[m0:]),
                         60.0 * self._centre, "oscillator")

    def _advance(self) -> None:
        """Run the oscillators over the next hop and update the tempo and the lag."""
        s, fps, lo = self.settings, self.fps, self._done
        hi = min(lo + self.hop, self._beat.size)
        drive = self._beat[lo:hi] + s.downbeat_drive * self._down[lo:hi]
        xs = np.concatenate([[self._last_input], drive, np.zeros(self.hop - (hi - lo))])
        self._z, self._peak, self._y, zc, _, amp = _phase_chunk(
            self._bank, self._motor, jnp.asarray(xs), self._z, self._peak, self._y,
            jnp.asarray(self._centre), fps, s)
        self._last_input = float(xs[hi - lo])
        zc = np.asarray(zc)[:hi - lo]
        u = zc / np.maximum(np.abs(zc), 1e-300)
        decay = np.exp(-np.arange(hi - lo)[::-1] / self.memory)
        self._lag_sum = (self._lag_sum * np.exp(-(hi - lo) / self.memory)
                         + np.sum(decay * drive * u))
        lag = np.conj(self._lag_sum) / abs(self._lag_sum) if abs(self._lag_sum) > 0 else 1.0
        self._v = np.concatenate([self._v, u * lag])
        self._done = hi
        w = np.exp(-(hi - lo) / self.memory)
        self._mean_amp = w * self._mean_amp + (1 - w) * np.asarray(amp)
        self._hops += 1
        if self._hops % self._tempo_every == 0:
            self._update_centre()

    def _update_centre(self) -> None:
        s, freqs = self.settings, self.settings.freqs()
        start = max(0, self._done - self.memory)
        score = tempo_score(self._mean_amp, self._beat[start:self._done],
                            self._down[start:self._done], self.fps, s)
        lo, hi = s.bpm_range[0] / 60.0, s.bpm_range[1] / 60.0
        score = np.where((freqs >= lo) & (freqs <= hi), score, -np.inf)
        if not np.isfinite(score).any() or self._done < 2 * self.hop:
            return
        best = int(np.argmax(score))
        here = int(np.argmin(np.abs(np.log(freqs / self._centre))))
        near = abs(best - here) <= s.per_octave * s.level_octaves
        if not near and score[best] - score[here] < np.log(s.hysteresis):
            best = here + int(np.argmax(score[max(0, here - s.search):here + s.search + 1])) \
                - min(here, s.search)
        new = float(freqs[best])
        if not near:
            ratio = new / self._centre
            self._y = ASHLEState(self._y.d, self._y.f_d * ratio, self._y.z, self._y.f * ratio)
            self._peak = jnp.asarray(best)
        self._centre = new

    def _emit(self, *, final: bool) -> None:
        """Finalise the beats whose refine window the input has reached."""
        s, fps = self.settings, self.fps
        end = self._done if final else self._done - int(round(s.refine_s * fps))
        if end <= self._scanned + 1:
            return
        lo = max(0, self._scanned - 1)
        times = phase_crossings_complex(self._v[lo:end], fps) + lo / fps
        self._scanned = end
        period = 1.0 / self._centre
        beat = self._beat[:self._done]
        times, snapped = snap_beats(times, beat, fps, s, period, lookahead=False)
        for t, moved in zip(times, snapped):
            if not moved:
                t = self._extrapolate(t)
            if self._beats and t - self._beats[-1] <= 0.5 * period:
                continue
            self._beats.append(float(t))
            if moved:
                self._anchors = (self._anchors + [len(self._beats) - 1])[-2:]
            if self._is_downbeat(t):
                self._downs.append(float(t))

    def _extrapolate(self, t: float) -> float:
        """A beat with no activation peak: the last two moved beats' interval continued
        (the tempo taken as constant), within `refine_s` of the oscillator's time `t` (so
        the latency bound holds)."""
        if len(self._anchors) < 2:
            return t
        i, j = self._anchors
        step = (self._beats[j] - self._beats[i]) / (j - i)
        guess = self._beats[j] + (len(self._beats) - j) * step
        r = self.settings.refine_s
        return float(np.clip(guess, t - r, t + r))

    def _is_downbeat(self, t: float) -> bool:
        s, down = self.settings, self._down
        half = max(1, int(round(s.refine_s * self.fps)))
        i = int(round(t * self.fps))
        obs = float(down[max(0, i - half): i + half + 1].max()) if down.size else 0.0
        if not _informative(down[:i + half + 1]):
            return False
        states = [(m, p) for m in s.meters for p in range(m)]
        self._bar = bar_filter(self._bar, obs, states, s.bar_switch)
        return states[int(np.argmax(self._bar))][1] == 0


def bar_filter(delta, obs: float, states: list[tuple[int, int]], switch: float) -> np.ndarray:
    """One forward (max-product) step of [`bar_viterbi`][]: the scores after one more
    beat with downbeat observation `obs` (`delta=None` starts)."""
    n = len(states)
    first = np.array([p == 0 for _, p in states])
    d = float(np.clip(obs, 1e-6, 1 - 1e-6))
    emit = np.where(first, np.log(d), np.log1p(-d))
    if delta is None:
        return emit - np.log(n)
    nxt = np.array([states.index((m, (p + 1) % m)) for m, p in states])
    trans = np.full((n, n), np.log(switch / n))
    trans[np.arange(n), nxt] = np.logaddexp(np.log1p(-switch), np.log(switch / n))
    out = np.max(delta[:, None] + trans, axis=0) + emit
    return out - out.max()


def _check_block(act: BeatActivation) -> tuple[np.ndarray, np.ndarray]:
    if np.size(act.beat) == 1:  # check_activation wants two frames
        act = BeatActivation(np.repeat(act.beat, 2), np.repeat(act.downbeat, 2), act.fps)
        b, d, _ = check_activation(act)
        return b[:1], d[:1]
    b, d, _ = check_activation(act)
    return b, d
