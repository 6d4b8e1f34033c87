"""Block streaming: EEG block -> biomarkers -> duet parameters -> duet audio, with latency.

Each block of EEG samples (default 0.25 s) is filtered causally (the filter state is
carried), appended to a ring buffer of one analysis window (default 2 s), and the window's
band powers, artefact masks, biomarkers, state and parameters are computed; then the duet
engine (`nrtjax.audio.duet.DuetEngine`) synthesises the same span of audio with those
parameters. The latency of a block is the compute time from the block's arrival to its
audio being ready (`time.perf_counter`); a block can be played as soon as it is ready, so
the end-to-end delay is one block (the acquisition) plus this latency.
"""

import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import scipy.signal

from .artifacts import ArtifactThresholds, blink_trace, clean_mean, window_artifacts
from .bands import band_powers
from .biomarkers import Baseline, biomarkers, features
from .classify import StateClassifier
from .io import EEGRecording, design_filter
from .mapping import PARAMETERS, Smoother, map_scores, scores


class EEGStreamState(NamedTuple):
    """Carried between blocks: filter state `zi`, the filtered `buffer (ch, <= window)`,
    the last clean band powers `powers (bands,)` (or None), the score `smoother`."""

    zi: np.ndarray
    buffer: np.ndarray
    powers: np.ndarray | None
    smoother: Smoother


class EEGBlock(NamedTuple):
    """The EEG side of one block: `normalised` biomarkers `(4,)` (1 = baseline),
    `params` (`{name: float}` for the four `DuetParams` fields the EEG sets), `state` (predicted state index, -1 before
    the first full window or without a classifier), `good_fraction` of channels used."""

    normalised: np.ndarray
    params: dict[str, float]
    state: int
    good_fraction: float


class EEGStreamer:
    """The EEG half of the stream (pure: `step` returns a new state, nothing is mutated).

    **Arguments:**

    - `fs`: EEG sampling rate in Hz; `n_channels`: channels in each block.
    - `baseline`: the subject's [`nrtjax.eeg.biomarkers.Baseline`][].
    - `classifier`: an optional [`nrtjax.eeg.classify.StateClassifier`][].
    - `window_s`: analysis window in seconds (default 2).
    - `tau_s`: smoothing time constant of the parameters in seconds (default 2).
    - `line_freq`: mains frequency to notch (None: none); `thresholds`: artefact thresholds.
    """

    def __init__(self, fs: float, n_channels: int, baseline: Baseline, *,
                 classifier: StateClassifier | None = None, window_s: float = 2.0,
                 tau_s: float = 2.0, line_freq: float | None = 50.0,
                 thresholds: ArtifactThresholds = ArtifactThresholds()):
        self.fs, self.n_channels, self.baseline = float(fs), int(n_channels), baseline
        self.classifier, self.thresholds, self.tau_s = classifier, thresholds, float(tau_s)
        self.window = int(round(window_s * fs))
        self.sos = design_filter(fs, line_freq=line_freq)

    def init(self, first: np.ndarray) -> EEGStreamState:
        """The state before the first block; `first (ch,)` is the first sample (it sets the
        filter's initial condition, as in [`nrtjax.eeg.io.filter_eeg`][])."""
        zi = scipy.signal.sosfilt_zi(self.sos)[:, None, :] * np.asarray(first)[None, :, None]
        return EEGStreamState(zi, np.zeros((self.n_channels, 0)), None, Smoother(self.tau_s))

    def step(self, state: EEGStreamState, block: np.ndarray) -> tuple[EEGStreamState, EEGBlock]:
        """Process one block `(ch, samples)` of raw EEG in volts."""
        y, zi = scipy.signal.sosfilt(self.sos, block, axis=-1, zi=state.zi)
        buf = np.concatenate([state.buffer, y], axis=1)[:, -self.window:]
        powers, frac, label = state.powers, 0.0, -1
        if buf.shape[1] == self.window:
            p = band_powers(buf, self.fs)[None]                         # (1, ch, bands)
            ptp = np.ptp(blink_trace(buf, self.fs), axis=-1)[None]
            blink, muscle = window_artifacts(ptp, p, self.thresholds)
            bad = blink | muscle
            frac = float(1 - bad.mean())
            if not bad.all() or powers is None:
                powers = clean_mean(p, bad)[0][0]
        if powers is None:
            norm = np.ones(4)
        else:
            norm = biomarkers(powers) / self.baseline.biomarkers
            if self.classifier is not None:
                label = int(self.classifier.predict(features(powers, self.baseline)[None])[0])
        smoother = state.smoother.update(scores(norm), block.shape[1] / self.fs)
        params = {k: float(v) for k, v in map_scores(smoother.state).items()}
        return EEGStreamState(zi, buf, powers, smoother), EEGBlock(norm, params, label, frac)


def blocks(rec: EEGRecording, block_s: float) -> Iterator[tuple[float, np.ndarray]]:
    """Split a recording into consecutive blocks of `block_s` seconds (sample boundaries
    rounded, so no sample is lost or repeated). Yields `(end_time_s, block (ch, m))`."""
    n = rec.data.shape[1]
    k = 0
    while True:
        a, b = int(round(k * block_s * rec.fs)), int(round((k + 1) * block_s * rec.fs))
        if b > n:
            return
        yield b / rec.fs, rec.data[:, a:b]
        k += 1


class StreamResult(NamedTuple):
    """The stream's outputs, one row per block: `times` (block end, s), `normalised`
    `(blocks, 4)`, `params` (`{name: (blocks,) array}` for the four `DuetParams` fields the
    EEG sets), `states`
    `(blocks,)`, `good_fraction`, `latency_s` (compute time per block), `audio` (the
    concatenated duet), `sr`, `infos` (the engine's per-block `BlockInfo`s)."""

    times: np.ndarray
    normalised: np.ndarray
    params: dict[str, np.ndarray]
    states: np.ndarray
    good_fraction: np.ndarray
    latency_s: np.ndarray
    audio: np.ndarray
    sr: int
    infos: list


def stream_duet(rec: EEGRecording, streamer: EEGStreamer, engine, base_params, *,
                block_s: float = 0.25, progress=None) -> StreamResult:
    """Stream a recording block by block through `streamer` and the duet `engine`.

    **Arguments:**

    - `rec`: the EEG (good channels, unfiltered, in volts) in the streamer's channel order.
    - `streamer`: an [`nrtjax.eeg.stream.EEGStreamer`][].
    - `engine`: an `nrtjax.audio.duet.DuetEngine`; `base_params`: its `DuetParams`
        (scale, gains, ...) whose `tempo_bpm`, `lambda1`, `lambda2`, `rho` the EEG sets.
    - `block_s`: block length in seconds (a multiple of `1 / engine.fs_sim`).
    - `progress`: optional callable `progress(n_done)` after each block (e.g. a tqdm update).

    The engine is compiled before the first timed block (one warm-up block on a
    throw-away state), so the latencies are those of the running stream.

    **Returns:** a [`nrtjax.eeg.stream.StreamResult`][].
    """
    engine.block_steps(block_s)
    duet = engine.init(base_params)
    engine.process_block(duet, base_params, block_s)                   # compile (warm-up)
    state = streamer.init(rec.data[:, 0])
    rows, audio, infos, lat = [], [], [], []
    for t_end, block in blocks(rec, block_s):
        t0 = time.perf_counter()
        state, out = streamer.step(state, block)
        params = base_params.replace(**out.params)
        sound, duet, info = engine.process_block(duet, params, block_s)
        lat.append(time.perf_counter() - t0)
        rows.append((t_end, out))
        audio.append(sound)
        infos.append(info)
        if progress is not None:
            progress(len(rows))
    if not rows:
        raise ValueError(f"The recording ({rec.duration:.2f} s) is shorter than one block "
                         f"({block_s} s).")
    outs = [o for _, o in rows]
    params = {k: np.array([o.params[k] for o in outs]) for k in PARAMETERS}
    return StreamResult(np.array([t for t, _ in rows]), np.stack([o.normalised for o in outs]),
                        params, np.array([o.state for o in outs]),
                        np.array([o.good_fraction for o in outs]), np.array(lat),
                        np.concatenate(audio), int(engine.sr), infos)


def latency_stats(latency_s: np.ndarray, block_s: float) -> dict:
    """`latency_ms_p50`, `latency_ms_p99`, `latency_ms_max` and `realtime_factor` (seconds
    of audio produced per second of compute; > 1 is faster than real time)."""
    lat = np.asarray(latency_s)
    return {"latency_ms_p50": float(np.percentile(lat, 50) * 1e3),
            "latency_ms_p99": float(np.percentile(lat, 99) * 1e3),
            "latency_ms_max": float(lat.max() * 1e3),
            "realtime_factor": float(len(lat) * block_s / lat.sum()),
            "block_ms": block_s * 1e3, "n_blocks": int(len(lat))}
