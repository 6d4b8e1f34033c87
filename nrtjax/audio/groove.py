"""Groove extraction: onset envelope -> GrFNN + ASHLE -> beats, tempo, drum events.

What is causal and what is not:

- causal (could run live): the onset envelope, the GrFNN resonance, the forcing built from
  it, and ASHLE's phase and frequency (`Groove.tracking`), given ASHLE's spontaneous rate
  and the band centre;
- offline (uses the whole recording): that global tempo (the peak of the time-averaged
  amplitude profile, which picks the metrical level), the constant phase offset at which
  the motor phase is read out as beats (`refine=True`: the offset whose beats land on the
  strongest onsets), the downbeat and the groove pattern (averages over bars).
"""

import os
from typing import NamedTuple

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..analysis import phase_crossings
from .groove_drums import DrumEvents, drum_events
from .features import AudioInfo, OnsetEnvelope, iter_audio_blocks, onset_envelope_file
from .tracking import TrackerSettings, Tracking, track


class Groove(NamedTuple):
    """The result of [`extract_groove`][].

    - `beats`: beat times in seconds, at the onsets (the envelope's latency compensated);
        `tempo_bpm`: mean tempo from the beat intervals.
    - `phase_offset`: the motor phase (rad) read out as a beat.
    - `envelope`: the onset envelope; `tracking`: the GrFNN/ASHLE [`Tracking`][].
    - `events`: the [`DrumEvents`][] (kick, snare, hat, velocities, groove pattern).
    """

    beats: np.ndarray
    tempo_bpm: float
    phase_offset: float
    envelope: OnsetEnvelope
    tracking: Tracking
    events: DrumEvents


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1:
        return x
    k = np.hanning(width + 2)[1:-1]
    return np.convolve(x, k / k.sum(), mode="same")


def beat_offset(tracking: Tracking, envelope: np.ndarray, fs: float, *, candidates: int = 48,
                skip: float = 2.0) -> float:
    """The phase offset (rad) whose beats land on the strongest onsets (offline).

    Every offset in a grid of `candidates` over one cycle turns the motor phase into
    beats; the one with the largest mean (lightly smoothed) onset strength at its beats,
    after the first `skip` seconds, wins.
    """
    env = _smooth(np.asarray(envelope, np.float64), max(1, int(round(0.03 * fs))))
    best, best_score = 0.0, -np.inf
    for theta in np.arange(candidates) * 2 * np.pi / candidates:
        b = phase_crossings(tracking.ts, tracking.phase, offset=theta)
        b = b[b >= skip]
        if b.size == 0:
            continue
        score = float(np.mean(np.interp(b * fs, np.arange(env.size), env)))
        if score > best_score:
            best, best_score = float(theta), score
    return best


def align_beats(tracking: Tracking, envelope: np.ndarray, fs: float, offset: float, *,
                tightness: float = 2400.0, phase_weight: float = 0.5,
                smooth_s: float = 8.0) -> np.ndarray:
    """Offline refinement: the beat sequence that best agrees with both the onsets and
    the motor oscillator, by dynamic programming (Ellis 2007;
    [`dp_beats`][nrtjax.beats.decode.dp_beats]), with ASHLE's own time-varying period
    alongside the global tempo.

    A beat at frame $t$ scores the normalised onset strength plus
    `phase_weight` $\\cos(\\phi(t) - \\theta)$ (agreement with the motor phase $\\phi$ read
    at offset $\\theta$); going from a beat at $s$ to one at $t$ costs
    `tightness` $\\min_P \\log^2((t - s) / P)$ over two tempo hypotheses: the motor
    period $P_m(t) = 1/f(t)$, ASHLE's learned frequency $f$ averaged over `smooth_s`
    seconds (it wobbles within a cycle as it learns), and the global period
    $P_g = 1/f_g$ of the resonance (`tracking.tempo_hz`). The motor period lets the
    beats follow tempo changes; the global one keeps them on a steady pulse when the
    motor's frequency wanders (where the forcing's phase slips, e.g. when on- and
    off-beats are equally strong and the resonance at the beat rate is weak). Each
    transition takes the hypothesis it fits best; the onsets decide between them.
    With two adaptive hypotheses the DP only has to absorb timing jitter:
    `tightness = 2400` makes an interval one envelope frame (10 ms) off a 120 BPM
    period cost about one unit of (normalised) onset strength, $2400 \\log^2(0.51/0.5)
    \\approx 0.94$ (with the motor period alone it was 400, 5 % per unit: the DP also had
    to absorb that period's errors).

    **References:** Ellis, D. P. W. (2007). Beat tracking by dynamic programming.
    J. New Music Res. 36(1), 51-60.
    """
    from ..beats.decode import dp_beats

    env = np.asarray(envelope, np.float64)
    local = env / (np.std(env) + 1e-12) + phase_weight * np.cos(tracking.phase - offset)
    freq = uniform_filter1d(tracking.freq, max(1, int(round(smooth_s * fs))), mode="nearest")
    period = fs / np.clip(freq, 0.25, 8.0)
    glob = fs / tracking.tempo_hz
    frames = dp_beats(local, [period, glob], tightness, envelope=env)
    return subframe_peaks(env, frames) / fs


def subframe_peaks(env: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Frame indices refined to fractional frames: the vertex of the parabola through
    the envelope at `k - 1, k, k + 1` where frame `k` is a local peak (unchanged
    elsewhere). Beats are then not quantised to the ~10 ms hop.

    **Returns:** float frame positions, shape `frames.shape`.
    """
    e = np.asarray(env, np.float64)
    k = np.asarray(frames, np.int64)
    inner = (k > 0) & (k < e.size - 1)
    a = e[np.clip(k - 1, 0, e.size - 1)]
    b = e[k]
    c = e[np.clip(k + 1, 0, e.size - 1)]
    curv = a - 2 * b + c
    peak = inner & (b >= a) & (b >= c) & (curv < 0)
    shift = np.where(peak, 0.5 * (a - c) / np.where(peak, curv, -1.0), 0.0)
    return k + np.clip(shift, -0.5, 0.5)


def beats_from_tracking(tracking: Tracking, envelope: np.ndarray, fs: float, *,
                        refine: bool = True, offset: float = 0.0) -> tuple[np.ndarray, float]:
    """Beats from the motor phase: with `refine`, the offset whose beats land on the
    strongest onsets and then [`align_beats`][] (offline); otherwise the times the motor
    phase passes `offset` (a causal readout).

    **Returns:** `(beats, offset)`.
    """
    if refine:
        offset = beat_offset(tracking, envelope, fs)
        return align_beats(tracking, envelope, fs, offset), offset
    return phase_crossings(tracking.ts, tracking.phase, offset=offset), offset


def extract_groove_envelope(
    envelope: OnsetEnvelope, *, settings: TrackerSettings = TrackerSettings(),
    refine: bool = True, offset: float = 0.0, chunk_s: float = 20.0, progress=None,
) -> Groove:
    """Beats, tempo and drum events from an onset envelope (see module docstring).

    **Arguments:**

    - `envelope`: an [`OnsetEnvelope`][] (e.g. from [`onset_envelope_file`][]).
    - `settings`: the tracker's [`TrackerSettings`][].
    - `refine`: pick the beat phase offline (default); `False` reads beats at the fixed
        motor phase `offset` (a causal readout).
    - `chunk_s`: simulation chunk length in seconds (bounded memory).
    - `progress`: optional callable `progress(done, total)`.
    """
    tr = track(envelope.values, envelope.fs, settings=settings, chunk_s=chunk_s,
               progress=progress)
    beats, offset = beats_from_tracking(tr, envelope.values, envelope.fs, refine=refine,
                                        offset=offset)
    if beats.size < 2:
        raise ValueError("Fewer than two beats were found: the recording has no steady pulse "
                         "the tracker can follow.")
    tempo = float(60.0 * (beats.size - 1) / (beats[-1] - beats[0]))
    events = drum_events(beats, envelope.values, envelope.fs, duration=tr.ts[-1])
    # The envelope peaks early (its latency < 0): beats and drum events at the onsets.
    lag = -float(envelope.latency)
    events = events._replace(times=events.times + lag)
    return Groove(beats + lag, tempo, offset, envelope, tr, events)


def extract_groove(
    path: str | os.PathLike, *, settings: TrackerSettings = TrackerSettings(),
    refine: bool = True, block_s: float = 30.0, chunk_s: float = 20.0, progress=None,
) -> tuple[Groove, AudioInfo]:
    """Groove extraction from an audio file, read in blocks of `block_s` seconds.

    **Returns:** `(groove, info)`.

    **Raises:** `FileNotFoundError` / [`nrtjax.audio.AudioError`][] naming the file for a
    missing, corrupt, truncated, empty, silent, too short or NaN-containing recording.
    """
    env, info = onset_envelope_file(path, block_s=block_s)
    return extract_groove_envelope(env, settings=settings, refine=refine, chunk_s=chunk_s,
                                   progress=progress), info


def groove_from_beats(beats: np.ndarray, envelope: OnsetEnvelope, tracking: Tracking, *,
                      duration: float) -> Groove:
    """A [`Groove`][] around beats found by another tracker: tempo from the beat intervals,
    drum events from the onset envelope (read at the envelope's latency, placed at the
    beats)."""
    beats = np.asarray(beats, np.float64)
    if beats.size < 2:
        raise ValueError("Fewer than two beats were found: the recording has no steady pulse "
                         "the tracker can follow.")
    tempo = float(60.0 * (beats.size - 1) / (beats[-1] - beats[0]))
    lat = float(envelope.latency)  # the envelope peaks `-lat` s before the onset
    events = drum_events(beats + lat, envelope.values, envelope.fs,
                         duration=duration + lat)
    events = events._replace(times=events.times - lat)
    return Groove(beats, tempo, 0.0, envelope, tracking, events)


def extract_groove_network(
    path: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None,
    decoder: str = "oscillator", settings: TrackerSettings = TrackerSettings(),
    block_s: float = 30.0, chunk_s: float = 20.0, progress=None,
):
    """Groove extraction with the learned beat tracker ([`nrtjax.beats.track_beats`][]):
    the beat network's activation, decoded by `decoder` (`"oscillator"`: GrFNN + ASHLE;
    `"hmm"`: the bar-pointer HMM), gives the beats; the onset envelope gives the drum
    events' groove pattern, as in [`extract_groove`][].

    `Groove.tracking` is the resonance + motor tracker ([`track`][]) driven by the beat
    activation instead of the onset envelope (the GrFNN profile, ASHLE's phase and
    frequency, the forcing phase), for the figure and the groove metrics; the beats are
    the decoder's. `phase_offset` is 0 (no read-out offset).

    **Returns:** `(groove, info, beat_track)` with the decoder's
    [`nrtjax.beats.BeatTrack`][] (downbeats, the decoder's tempo).

    **Raises:** as [`extract_groove`][], and `FileNotFoundError`/`ValueError` for a missing
    or mismatched `checkpoint`.
    """
    from ..beats.track import beat_activation, decode

    env, info = onset_envelope_file(path, block_s=block_s)
    audio = np.concatenate(list(iter_audio_blocks(info, block_s=block_s)))
    act = beat_activation(audio, info.sr, checkpoint=checkpoint)
    del audio
    bt = decode(act, decoder)
    tr = track(act.beat, act.fps, settings=settings, chunk_s=chunk_s, progress=progress)
    return groove_from_beats(bt.beats, env, tr, duration=info.duration), info, bt
