"""The shipped beat network: it loads, gives a fixed activation on a fixed input, and
tracks synthetic click tracks, drum patterns and a tempo ramp (both decoders)."""

from pathlib import Path

import numpy as np
import pytest

from nrtjax.audio.beat_eval import f_measure
from nrtjax.beats import (SHIPPED, BeatTrack, activation_from_spectrogram, beat_activation,
                          load_model, model_card, track_beats)
from nrtjax.beats.features import FPS, N_BANDS
from tests.test_groove import SR, _render, drum_pattern, ramp_beats

EXPECTED = Path(__file__).parent / "data" / "beatnet_expected.npz"


def fixed_input() -> np.ndarray:
    """A deterministic spectrogram-like input, (64 bands, 400 frames): smooth noise plus
    broadband onsets every 50 frames."""
    rng = np.random.default_rng(1234)
    x = 1.5 + 0.5 * rng.standard_normal((N_BANDS, 400))
    x[:, ::50] += 3.0
    return np.clip(x, 0, None).astype(np.float32)


def test_shipped_checkpoint_loads_with_its_card():
    card = model_card()
    assert SHIPPED.exists() and SHIPPED.stat().st_size < 4 * 2**20
    assert len(card["corpus"]["manifest_sha256"]) == 64
    assert {"valid", "train_seconds", "config"} <= set(card)
    model = load_model()
    assert model.bands == N_BANDS and not model.causal


def test_shipped_checkpoint_gives_the_fixed_activation():
    act = activation_from_spectrogram(load_model(), fixed_input())
    with np.load(EXPECTED, allow_pickle=False) as f:
        np.testing.assert_allclose(act.beat, f["beat"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(act.downbeat, f["downbeat"], rtol=1e-4, atol=1e-5)
        assert (act.tempo is None) == ("tempo" not in f.files)
        if act.tempo is not None:  # the tempo head's probabilities
            np.testing.assert_allclose(act.tempo, f["tempo"], rtol=1e-4, atol=1e-6)
    assert act.fps == FPS


def test_activation_peaks_at_clicks():
    beats = np.arange(0.5, 12.0, 0.5)
    act = beat_activation(_render([(b, "click", 1.0) for b in beats], 12.0), SR)
    assert act.beat.shape == (1 + 12 * 100,)
    at = np.round(beats * FPS).astype(int)
    near = np.array([act.beat[i - 2:i + 3].max() for i in at])  # within 20 ms of a click
    between = np.array([act.beat[i + 10:i + 41].max() for i in at[:-1]])  # 100-400 ms after
    assert np.median(near) > 0.3 and between.max() < 0.1 * np.median(near)


CASES = {
    "click_90": lambda: (np.arange(0.4, 30.0, 60 / 90), "click"),
    "click_120": lambda: (np.arange(0.4, 30.0, 0.5), "click"),
    "click_150": lambda: (np.arange(0.4, 30.0, 0.4), "click"),
    "drums_100": lambda: (np.arange(0.25, 30.0, 0.6), "drums"),
    "drums_128": lambda: (np.arange(0.25, 30.0, 60 / 128), "drums"),
    "ramp_100_130": lambda: (ramp_beats(100.0, 130.0, 40.0), "drums"),
}


@pytest.mark.parametrize("decoder", ["oscillator", "hmm"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_synthetic_beats(case, decoder):
    # click_90 is the HMM's metrical-level case: observing the raw activation (no
    # tolerance) it took the 180 BPM level (F 0.67); see HMMSettings.tolerance.
    beats, kind = CASES[case]()
    duration = 40.0 if case.startswith("ramp") else 30.0
    hits = [(b, "click", 1.0) for b in beats] if kind == "click" else drum_pattern(beats)
    out = track_beats(_render(hits, duration, seed=3), SR, decoder=decoder)
    assert isinstance(out, BeatTrack) and out.decoder == decoder
    assert f_measure(beats, out.beats) >= 0.99


def test_unknown_decoder_is_refused():
    with pytest.raises(ValueError, match="oscillator"):
        track_beats(np.zeros(16000), 16000, decoder="dbn")
