"""The beat network's input: a log-magnitude mel spectrogram at exactly 100 frames/s.

Audio at any rate is first resampled to 16 kHz (librosa with soxr, high quality), where a
hop of 160 samples gives exactly 100 frames per second; frame $i$ is centred at
$i / 100$ s (librosa's centred STFT, zero-padded at both ends). Each frame is a 1024-point
Hann-windowed STFT (64 ms) whose magnitudes are summed into `N_BANDS` mel bands from
30 Hz to 8 kHz and compressed as $\\log(1 + \\gamma S)$, the compression of Böck's beat
trackers (Böck, Krebs & Widmer 2016). The network adds the positive first difference
over time itself ([`BeatNet`][nrtjax.beats.BeatNet]), so the cached features stay half
the size.

**References:** Böck, S., Krebs, F. & Widmer, G. (2016). Joint beat and downbeat tracking
with recurrent neural networks. ISMIR. Davies, M. E. P. & Böck, S. (2019). Temporal
convolutional networks for musical audio beat tracking. EUSIPCO.
"""

import functools

import numpy as np

SAMPLE_RATE = 16000  # Hz: the rate the network's features are computed at
HOP = 160  # samples: SAMPLE_RATE / HOP = 100 frames/s exactly
FPS = SAMPLE_RATE / HOP
"""Frames per second of the network's features and activations: exactly 100.0."""
N_FFT = 1024
N_BANDS = 64
FMIN, FMAX = 30.0, 8000.0
GAMMA = 100.0  # compression gain in log(1 + GAMMA S)
# Names these settings in feature caches (a change of any of them makes a new cache).
FEATURES_ID = f"sr{SAMPLE_RATE}_hop{HOP}_fft{N_FFT}_mel{N_BANDS}_{FMIN:g}-{FMAX:g}_g{GAMMA:g}"


@functools.cache
def _filterbank() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_BANDS, fmin=FMIN,
                               fmax=FMAX).astype(np.float32)


def resample(audio: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 audio at `sr` Hz resampled to [`SAMPLE_RATE`][] (unchanged if equal)."""
    import librosa

    y = np.asarray(audio, np.float32).reshape(-1)
    if int(sr) == SAMPLE_RATE:
        return y
    return librosa.resample(y, orig_sr=int(sr), target_sr=SAMPLE_RATE,
                            res_type="soxr_hq").astype(np.float32)


def n_frames(samples: int, sr: int) -> int:
    """How many frames [`spectrogram`][] gives for `samples` samples at `sr` Hz."""
    resampled = int(np.ceil(samples * SAMPLE_RATE / int(sr))) if int(sr) != SAMPLE_RATE else samples
    return 1 + resampled // HOP


def spectrogram(audio: np.ndarray, sr: int) -> np.ndarray:
    """The log-magnitude mel spectrogram of a mono recording, at [`FPS`][] = 100 frames/s.

    **Arguments:**

    - `audio`: mono samples, shape `(samples,)`, finite.
    - `sr`: their sampling rate in Hz (any; resampled to 16 kHz).

    **Returns:** float32, shape `(N_BANDS, frames)` with `frames = 1 + samples16 // 160`
    (`samples16` the length at 16 kHz); frame $i$ is centred at $i / 100$ s.

    **Raises:** `ValueError` for a multichannel, empty or non-finite input, or `sr <= 0`.
    """
    import librosa

    y = np.asarray(audio)
    if y.ndim != 1:
        raise ValueError(f"spectrogram needs mono audio of shape (samples,), got shape {y.shape}; "
                         "average the channels first.")
    if int(sr) <= 0:
        raise ValueError(f"sr={sr} must be a positive sampling rate in Hz.")
    if y.size == 0:
        raise ValueError("The audio is empty: give at least one sample.")
    if not np.all(np.isfinite(y)):
        raise ValueError("The audio has NaN or inf samples; repair or re-export it.")
    y = resample(y, sr)
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True, pad_mode="constant"))
    return np.log1p(GAMMA * (_filterbank() @ mag)).astype(np.float32)
