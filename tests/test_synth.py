"""Drum and note synthesis, mixing and headroom (nrtjax.audio.synth, nrtjax.audio.mix)."""

import jax.random as jr
import numpy as np
import pytest
import soundfile as sf

from nrtjax.audio import mix, synth, write_wav

SR = 22050


def _energy_onsets(x: np.ndarray, sr: int, *, frame_s=0.001, rise_db=30.0, gap_s=0.2):
    """Independent onset picker: 1 ms frames whose energy jumps `rise_db` above the
    quietest of the previous 20 frames, at least `gap_s` apart."""
    hop = int(frame_s * sr)
    frame_s = hop / sr
    frames = x[: x.size // hop * hop].reshape(-1, hop)
    e = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    out, last = [], -np.inf
    for i in range(20, e.size):
        if e[i] - e[i - 20:i].min() > rise_db and (i - last) * frame_s > gap_s:
            out.append(i * frame_s)
            last = i
    return np.asarray(out)


def test_drum_onsets_match_events():
    events = [(0.25, "kick", 1.0), (0.75, "snare", 0.6), (1.3, "hat", 0.4), (1.9, "kick", 0.3),
              (2.45, 1, 0.9), (3.05, "hat", 1.0)]
    audio = synth.render_drums(events, 3.5, SR, key=jr.key(0))
    found = _energy_onsets(audio, SR)
    times = np.array([e[0] for e in events])
    assert found.size == times.size
    np.testing.assert_allclose(found, times, atol=0.002)


def test_drum_onsets_librosa_agrees():
    librosa = pytest.importorskip("librosa")
    times = np.arange(0.3, 5.0, 0.5)
    events = [(t, synth.DRUMS[i % 3], 0.5 + 0.5 * (i % 2)) for i, t in enumerate(times)]
    audio = synth.render_drums(events, 5.5, SR, key=3)
    found = librosa.onset.onset_detect(y=audio.astype(np.float32), sr=SR, units="time",
                                       hop_length=128, backtrack=True)
    assert found.size == times.size
    np.testing.assert_allclose(found, times, atol=0.015)


def test_drums_deterministic_per_key_and_velocity_scaled():
    events = [(0.1, "snare", 0.8), (0.5, "hat", 0.8)]
    a = synth.render_drums(events, 1.0, SR, key=jr.key(1))
    b = synth.render_drums(events, 1.0, SR, key=jr.key(1))
    c = synth.render_drums(events, 1.0, SR, key=jr.key(2))
    d = synth.render_drums(events, 1.0, SR, key=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-3 and np.max(np.abs(a - d)) > 1e-3
    for voice in (synth.kick, synth.snare, synth.hat):
        peaks = [np.max(np.abs(voice(v, SR, key=7))) for v in (0.2, 0.5, 1.0)]
        assert peaks[0] < peaks[1] < peaks[2]
        # the same noise at half velocity is (nearly) half as loud
        assert 0.3 < peaks[0] / peaks[1] < 0.5
    with pytest.raises(TypeError, match="key="):
        synth.render_drums(events, 1.0, SR, key=None)


@pytest.mark.parametrize("bad, match", [
    ([(0.1, "cowbell", 0.5)], "Unknown drum instrument"),
    ([(0.1, "kick", 1.5)], "velocity must lie in"),
    ([(float("nan"), "kick", 0.5)], "finite"),
])
def test_drum_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        synth.render_drums(bad, 1.0, SR, key=0)


def test_events_past_the_end_are_cut_not_wrapped():
    audio = synth.render_drums([(0.95, "kick", 1.0), (2.0, "kick", 1.0)], 1.0, SR, key=0)
    assert audio.shape == (SR,)
    assert np.all(audio[: int(0.94 * SR)] == 0.0)
    assert np.max(np.abs(audio[int(0.95 * SR):])) > 0.1


def test_note_pitch_and_envelope():
    audio = synth.render_notes([(0.0, 69, 0.8, 0.8)], 1.5, SR)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    freqs = np.fft.rfftfreq(audio.size, 1 / SR)
    assert abs(freqs[np.argmax(spectrum)] - 440.0) < 1.5
    # silence after the note and its 0.18 s release
    assert np.max(np.abs(audio[int(1.0 * SR):])) < 1e-4
    env = synth.adsr(0.5, SR)
    assert env.size == round(0.68 * SR) and env.max() <= 1.0 and env.min() >= 0.0
    np.testing.assert_allclose(synth.midi_to_hz([57, 69, 81]), [220.0, 440.0, 880.0])


def test_normalize_headroom_exact():
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 37.0):
        x = scale * rng.standard_normal(10_000)
        y = mix.normalize(x, peak_dbfs=-1.0)
        target = 10 ** (-1 / 20)
        assert np.max(np.abs(y)) <= target
        assert np.max(np.abs(y)) == pytest.approx(target, rel=1e-12)
        np.testing.assert_allclose(y / x, y[0] / x[0])  # a pure gain
    np.testing.assert_array_equal(mix.normalize(np.zeros(8)), np.zeros(8))
    with pytest.raises(ValueError, match="<= 0 dBFS"):
        mix.normalize(np.ones(4), peak_dbfs=3.0)
    with pytest.raises(ValueError, match="NaN"):
        mix.normalize(np.array([0.1, np.nan]))


def test_mix_then_write_never_clips(tmp_path):
    drums = synth.render_drums([(0.0, "kick", 1.0), (0.1, "snare", 1.0)], 0.5, SR, key=0)
    notes = synth.render_notes([(0.0, 60, 1.0, 0.3), (0.0, 64, 1.0, 0.3)], 0.4, SR)
    loud = mix.mix([drums, notes], [mix.db_to_gain(12.0), 3.0])
    assert loud.shape == drums.shape
    assert np.max(np.abs(loud)) > 1.0
    with pytest.raises(ValueError, match="clip"):
        write_wav(tmp_path / "bad.wav", loud, SR)
    path = write_wav(tmp_path / "ok.wav", mix.normalize(loud, -1.0), SR)
    back, sr = sf.read(path)
    assert sr == SR and mix.peak_dbfs(back) <= -1.0 + 0.01


def test_mix_pads_and_checks():
    out = mix.mix([np.ones(3), np.ones(5)], [0.5, 2.0])
    np.testing.assert_allclose(out, [2.5, 2.5, 2.5, 2.0, 2.0])
    stereo = mix.mix([np.ones((4, 2)), np.ones(4)])
    assert stereo.shape == (4, 2) and np.all(stereo == 2.0)
    with pytest.raises(ValueError, match="2 tracks but 1 gains"):
        mix.mix([np.ones(3), np.ones(3)], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        mix.mix([np.array([np.inf])])


def test_soft_limit():
    x = np.linspace(-40.0, 40.0, 200_001)
    y = mix.soft_limit(x, -1.0, knee_dbfs=-6.0)
    ceiling, knee = 10 ** (-1 / 20), 10 ** (-6 / 20)
    assert np.max(np.abs(y)) < ceiling
    small = np.abs(x) <= knee
    np.testing.assert_array_equal(y[small], x[small])
    assert np.all(np.diff(y) >= 0)  # monotone
    h = 1e-7  # slope 1 on both sides of the knee (continuous derivative)
    above = mix.soft_limit(np.array([knee + h]))[0] - knee
    assert above == pytest.approx(h, rel=1e-3)
    assert mix.peak_dbfs(np.array([0.5])) == pytest.approx(20 * np.log10(0.5))
