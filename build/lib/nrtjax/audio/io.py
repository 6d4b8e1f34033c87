"""Audio in and out: any WAV/FLAC/OGG/MP3 in, atomic WAV out (soundfile)."""

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from ..io import atomic_path


class AudioError(ValueError):
    """An audio file that cannot be used: missing, corrupt, empty, silent, too short, NaN."""


def load_audio(
    path: str | os.PathLike, *, sr: int | None = None, min_duration: float = 2.0
) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32 in [-1, 1].

    Multichannel files are averaged to mono; 8-32 bit integer and float files are
    scaled by soundfile. With `sr` set, the audio is resampled (librosa, soxr).

    **Arguments:**

    - `path`: a WAV, FLAC, OGG or MP3 file (anything libsndfile reads).
    - `sr`: target sampling rate in Hz, or `None` to keep the file's.
    - `min_duration`: shortest accepted recording in seconds.

    **Returns:** `(audio, sr)` with `audio` of shape `(samples,)`.

    **Raises:** `FileNotFoundError` for a missing file; `AudioError` naming the file for
    a corrupt or truncated file, an empty, silent or too-short recording, or NaN samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Audio file not found: {path}. Check the path (audio=...).")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioError(
            f"Cannot decode audio file {path}: {e}. It is corrupt, truncated or not an "
            "audio format libsndfile reads (WAV, FLAC, OGG, MP3); re-export it as WAV."
        ) from e
    if data.shape[0] == 0:
        raise AudioError(f"Audio file {path} contains no samples. Give a recording of at least "
                         f"{min_duration:g} s.")
    if not np.all(np.isfinite(data)):
        bad = int(np.flatnonzero(~np.isfinite(data).all(1))[0])
        raise AudioError(f"Audio file {path} has NaN or inf samples (first at "
                         f"{bad / file_sr:.3f} s). Repair or re-export the file.")
    audio = data.mean(axis=1)
    duration = audio.shape[0] / file_sr
    if duration < min_duration:
        raise AudioError(f"Audio file {path} is {duration:.2f} s long; at least "
                         f"{min_duration:g} s are needed to find a beat.")
    if float(np.max(np.abs(audio))) < 1e-6:
        raise AudioError(f"Audio file {path} is silent (peak below -120 dBFS); there is no "
                         "rhythm to analyse.")
    if sr is not None and sr != file_sr:
        import librosa

        audio = librosa.resample(audio, orig_sr=file_sr, target_sr=sr).astype(np.float32)
        file_sr = sr
    return audio, int(file_sr)


def write_wav(
    path: str | os.PathLike, audio: np.ndarray, sr: int, *, subtype: str = "PCM_16"
) -> Path:
    """Write `audio` (`(samples,)` or `(samples, channels)`, float in [-1, 1]) atomically.

    **Raises:** `ValueError` for NaN/inf samples or samples beyond full scale (normalise
    with `nrtjax.audio.mix` helpers first: nothing is silently clipped).
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise ValueError(f"Refusing to write an empty audio file to {path}.")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"Audio for {path} contains NaN or inf samples.")
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        raise ValueError(f"Audio for {path} peaks at {peak:.3f} > 1.0 (full scale) and would "
                         "clip; scale it down (e.g. normalise to -1 dBFS) before writing.")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio, int(sr), subtype=subtype, format="WAV")
    return Path(path)
