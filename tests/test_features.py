import librosa
import numpy as np
import pytest
import soundfile as sf

from nrtjax.audio import AudioError
from nrtjax.audio.features import OnsetTracker, audio_info, onset_envelope, onset_envelope_file


def _clicks(sr, times, dur, seed=0):
    rng = np.random.default_rng(seed)
    y = (0.005 * rng.standard_normal(int(dur * sr))).astype(np.float32)
    n = np.arange(int(0.03 * sr))
    c = np.sin(2 * np.pi * 800 * n / sr) * np.exp(-n / (0.005 * sr))
    for t in times:
        i = int(t * sr)
        y[i:i + c.size] += c[: y.size - i]
    return y


@pytest.mark.parametrize("sr", [22050, 44100])
def test_envelope_matches_librosa_whole_signal(sr):
    y = _clicks(sr, np.arange(0.3, 6.0, 0.4), 6.0)
    env = onset_envelope(y, sr, block_s=1.7)
    tr = OnsetTracker(sr)
    S = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=tr.n_fft, hop_length=tr.hop, n_mels=64, fmax=min(sr / 2, 11025),
        window=np.hanning(tr.n_fft + 1)[:-1], pad_mode="constant", power=2.0)
    ref = librosa.onset.onset_strength(
        S=librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None), center=False)
    assert env.values.shape == ref.shape
    np.testing.assert_allclose(env.values, ref, atol=1e-3 * ref.max())
    assert env.fs == pytest.approx(sr / round(sr / 100))


def test_blocks_do_not_change_the_envelope():
    sr = 16000
    y = _clicks(sr, np.arange(0.1, 9.0, 0.37), 9.0)
    a = onset_envelope(y, sr, block_s=0.77).values
    b = onset_envelope(y, sr, block_s=100.0).values
    np.testing.assert_allclose(a, b, atol=1e-4 * b.max())


def test_peaks_at_onsets():
    sr = 22050
    times = np.arange(0.5, 5.0, 0.5)
    env = onset_envelope(_clicks(sr, times, 5.5), sr)
    idx = np.flatnonzero(env.values > 0.5 * env.values.max())
    peaks = idx[np.concatenate([[True], np.diff(idx) > 5])] / env.fs
    assert peaks.size == times.size
    np.testing.assert_allclose(peaks, times, atol=0.03)


def test_file_streaming_stereo_int16(tmp_path):
    sr = 22050
    y = _clicks(sr, np.arange(0.2, 4.0, 0.5), 4.0)
    path = tmp_path / "s.flac"
    sf.write(path, np.stack([y, 0.5 * y], 1), sr, subtype="PCM_16")
    env, info = onset_envelope_file(path, block_s=0.5)
    assert (info.sr, info.channels) == (sr, 2)
    direct = onset_envelope((0.75 * y).astype(np.float32), sr).values
    np.testing.assert_allclose(env.values, direct, atol=0.05 * direct.max())


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        audio_info(tmp_path / "nope.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF0000WAVEnot really audio" * 3)
    with pytest.raises(AudioError, match="junk.wav.*corrupt"):
        audio_info(junk)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(1000, np.float32) + 0.1, 8000)
    with pytest.raises(AudioError, match="short.wav is 0.12 s long"):
        audio_info(short)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(3 * 8000, np.float32), 8000)
    with pytest.raises(AudioError, match="silent.wav is silent"):
        onset_envelope_file(silent)
    nan = tmp_path / "nan.wav"
    x = np.full(3 * 8000, 0.1, np.float32)
    x[20000] = np.nan
    sf.write(nan, x, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav has NaN.*2.500 s"):
        onset_envelope_file(nan, block_s=1.0)


@pytest.mark.parametrize("sr", [16000, 22050])
def test_latency_matches_the_measured_peak_lag_of_sharp_onsets(sr):
    # clicks (1 kHz, 4 ms decay) and noise bursts (10 ms decay) over a noise floor at
    # known times; the envelope's peaks, refined to a parabola's vertex, come early by
    # about a quarter window (the tracker's `latency`)
    rng = np.random.default_rng(1)
    times = np.arange(0.5, 12.0, 0.37) + rng.uniform(0, 0.01, 32)
    y = 0.003 * rng.standard_normal(int(12.5 * sr))
    n = np.arange(int(0.1 * sr))
    for k, t in enumerate(times):
        v = (np.sin(2 * np.pi * 1000 * n / sr) * np.exp(-n / (0.004 * sr)) if k % 2 == 0
             else rng.standard_normal(n.size) * np.exp(-n / (0.01 * sr)))
        i = int(round(t * sr))
        y[i:i + n.size] += v
    env = onset_envelope(y.astype(np.float32), sr)
    e = env.values
    lags = []
    for t in times:
        c = int(round(t * env.fs))
        k = c - 4 + int(np.argmax(e[c - 4:c + 5]))
        a, b, d = e[k - 1], e[k], e[k + 1]
        lags.append((k + 0.5 * (a - d) / (a - 2 * b + d)) / env.fs - t)
    latency = OnsetTracker(sr).latency
    assert env.latency == latency
    assert latency < 0
    assert abs(np.median(lags) - latency) < 0.004
