"""Onset envelopes from audio, read and computed in blocks with bounded memory.

The onset envelope is librosa's spectral-flux onset strength (Böck & Widmer 2013 style:
the half-wave rectified first difference of the log-power mel spectrogram, averaged over
mel bands). It is computed frame by frame in blocks that carry the last samples and the
last spectrum across the block boundary, so the envelope of a long file equals the
envelope of the whole file computed at once, while only one block of audio is in memory.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from .io import AudioError

ENVELOPE_RATE = 100.0  # target frame rate in Hz; the exact rate is sr / round(sr / 100)


class AudioInfo(NamedTuple):
    """What a file holds: `sr` (Hz), `frames` (samples per channel), `channels`."""

    path: Path
    sr: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sr


class OnsetEnvelope(NamedTuple):
    """An onset envelope: `values` (frames,), sampled at `fs` Hz, frame k at `k / fs` s,
    `peak`, the largest absolute audio sample seen (to detect silent files), and
    `latency` (s, negative: early), where the envelope peaks relative to a sharp onset
    (see [`OnsetTracker.latency`][]); events read off the envelope's peaks are placed
    at `t - latency`."""

    values: np.ndarray
    fs: float
    peak: float
    latency: float = 0.0


def audio_info(path: str | os.PathLike, *, min_duration: float = 2.0) -> AudioInfo:
    """Open `path` and check it can be analysed, without reading the samples.

    **Raises:** `FileNotFoundError` for a missing file; `AudioError` naming the file for a
    file libsndfile cannot decode, an empty one, or one shorter than `min_duration`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Audio file not found: {path}. Check the path (audio=...).")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(
            f"Cannot decode audio file {path}: {e}. It is corrupt, truncated or not an audio "
            "format libsndfile reads (WAV, FLAC, OGG, MP3); re-export it as WAV."
        ) from e
    if info.frames <= 0:
        raise AudioError(f"Audio file {path} contains no samples. Give a recording of at "
                         f"least {min_duration:g} s.")
    out = AudioInfo(path, int(info.samplerate), int(info.frames), int(info.channels))
    _check_riff_length(path, out)
    if out.duration < min_duration:
        raise AudioError(f"Audio file {path} is {out.duration:.2f} s long; at least "
                         f"{min_duration:g} s are needed to find a beat.")
    return out


def _check_riff_length(path: Path, info: AudioInfo) -> None:
    """A WAV whose `data` chunk declares more bytes than the file holds was truncated
    (libsndfile silently reads what is there)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = path.stat().st_size
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            name, length = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"data":
                have = size - f.tell()
                if length != 0xFFFFFFFF and have < length:
                    raise AudioError(
                        f"Audio file {path} is truncated: its header declares {length} bytes of "
                        f"samples but only {have} are there ({info.duration:.2f} s readable). "
                        "Re-export or re-download it.")
                return
            f.seek(length + (length & 1), 1)


def iter_audio_blocks(info: AudioInfo, *, block_s: float = 30.0) -> Iterator[np.ndarray]:
    """Yield the file as mono float32 blocks of `block_s` seconds (the last one shorter).

    Channels are averaged. Every block is checked for NaN/inf samples, and a file that
    ends before its header says (truncated) is reported.

    **Raises:** `AudioError` naming the file and the time of the problem.
    """
    block = max(1, int(round(block_s * info.sr)))
    done = 0
    try:
        with sf.SoundFile(str(info.path)) as f:
            while done < info.frames:
                data = f.read(min(block, info.frames - done), dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                finite = np.isfinite(data).all(axis=1)
                if not finite.all():
                    bad = done + int(np.flatnonzero(~finite)[0])
                    raise AudioError(f"Audio file {info.path} has NaN or inf samples (first at "
                                     f"{bad / info.sr:.3f} s). Repair or re-export the file.")
                done += data.shape[0]
                yield data.mean(axis=1)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"Cannot decode audio file {info.path} at {done / info.sr:.2f} s: {e}. "
                         "It is corrupt or truncated; re-export it.") from e
    if done < info.frames and done / info.sr < 2.0:
        raise AudioError(f"Audio file {info.path} is truncated: only {done / info.sr:.2f} s of "
                         f"{info.duration:.2f} s could be read.")


def frame_params(sr: int) -> tuple[int, int]:
    """`(hop, n_fft)` for a sampling rate: about 10 ms hops and 46 ms windows."""
    hop = max(1, int(round(sr / ENVELOPE_RATE)))
    n_fft = int(2 ** np.ceil(np.log2(0.046 * sr)))
    return hop, n_fft


class OnsetTracker:
    """Streaming onset strength: feed blocks of mono audio, get envelope frames.

    The output equals `librosa.onset.onset_strength` on the whole signal with centred,
    zero-padded frames and a log-power mel spectrogram referenced to 1 (no per-file
    normalisation, so the result does not depend on where blocks are cut).
    """

    def __init__(self, sr: int, *, n_mels: int = 64):
        """**Arguments:** `sr`: sampling rate in Hz; `n_mels`: mel bands."""
        import librosa

        self.sr = int(sr)
        self.hop, self.n_fft = frame_params(self.sr)
        self.n_mels = n_mels
        fmax = min(self.sr / 2.0, 11025.0)
        self._mel = librosa.filters.mel(sr=self.sr, n_fft=self.n_fft, n_mels=n_mels, fmax=fmax)
        self._window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        self._buffer = np.zeros(self.n_fft // 2, dtype=np.float32)  # centred first frame
        self._last: np.ndarray | None = None
        self.peak = 0.0

    @property
    def fs(self) -> float:
        return self.sr / self.hop

    @property
    def latency(self) -> float:
        """Where the envelope peaks relative to a sharp onset, in seconds: minus a
        quarter window, `-n_fft / (4 sr)` (-11.6 ms at 22.05 or 44.1 kHz). A centred
        frame sees an onset from half a window before its centre on, and the log-power
        flux jumps before the window's bulk does. Measured on synthetic clicks, kicks,
        snares and hats over a noise floor: -9 to -13 ms with 46 ms windows, -16 to
        -19 ms with 64 ms windows (`tests/test_features.py`)."""
        return -self.n_fft / (4.0 * self.sr)

    def push(self, block: np.ndarray, *, final: bool = False) -> np.ndarray:
        """Add samples; return the envelope frames that are now complete."""
        import librosa

        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
        buf = np.concatenate([self._buffer, block])
        if final:
            buf = np.concatenate([buf, np.zeros(self.n_fft // 2, np.float32)])
        n = 0 if buf.size < self.n_fft else 1 + (buf.size - self.n_fft) // self.hop
        if n == 0:
            self._buffer = buf
            return np.zeros(0)
        frames = np.lib.stride_tricks.sliding_window_view(buf, self.n_fft)[:: self.hop][:n]
        power = np.abs(np.fft.rfft(frames * self._window, axis=1)) ** 2
        logmel = librosa.power_to_db(self._mel @ power.T, ref=1.0, amin=1e-10, top_db=None)
        self._buffer = buf[n * self.hop:]
        prev = logmel[:, :1] if self._last is None else self._last
        self._last = logmel[:, -1:]
        both = np.concatenate([prev, logmel], axis=1)
        flux = librosa.onset.onset_strength(S=both, lag=1, max_size=1, center=False,
                                            detrend=False)
        return flux[1:].astype(np.float64)


def onset_envelope(audio: np.ndarray, sr: int, *, block_s: float = 30.0) -> OnsetEnvelope:
    """The onset envelope of a mono signal held in memory (processed in blocks)."""
    tracker = OnsetTracker(sr)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    step = max(1, int(round(block_s * sr)))
    parts = [tracker.push(audio[i:i + step]) for i in range(0, audio.size, step)]
    parts.append(tracker.push(np.zeros(0, np.float32), final=True))
    return OnsetEnvelope(np.concatenate(parts), tracker.fs, tracker.peak, tracker.latency)


def onset_envelope_file(path: str | os.PathLike, *, block_s: float = 30.0,
                        min_duration: float = 2.0) -> tuple[OnsetEnvelope, AudioInfo]:
    """Stream a file from disk into its onset envelope; memory is one block of audio.

    **Raises:** `FileNotFoundError`/`AudioError` (see [`audio_info`][] and
    [`iter_audio_blocks`][]), and `AudioError` for a silent recording.
    """
    info = audio_info(path, min_duration=min_duration)
    tracker = OnsetTracker(info.sr)
    parts = [tracker.push(b) for b in iter_audio_blocks(info, block_s=block_s)]
    parts.append(tracker.push(np.zeros(0, np.float32), final=True))
    if tracker.peak < 1e-6:
        raise AudioError(f"Audio file {info.path} is silent (peak below -120 dBFS); there is no "
                         "rhythm to analyse.")
    return OnsetEnvelope(np.concatenate(parts), tracker.fs, tracker.peak,
                         tracker.latency), info
