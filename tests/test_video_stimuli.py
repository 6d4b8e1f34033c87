"""Stimulus videos: real files with the promised ground truth."""

import numpy as np
import pytest

import nrtjax.video as nv
from nrtjax.video.stimuli import _SEG


def _dominant_hz(feats, fmin=0.5, fmax=4.0):
    e = feats.energy - feats.energy.mean()
    spec = np.abs(np.fft.rfft(e * np.hanning(e.size), n=16 * e.size))
    f = np.fft.rfftfreq(16 * e.size, 1 / feats.fps)
    band = (f >= fmin) & (f <= fmax)
    return f[band][np.argmax(spec[band])]


@pytest.mark.parametrize("name", ["ball", "walker"])
def test_motion_energy_period_is_the_true_period(tmp_path, getkey, name):
    stim = nv.generate(name, tmp_path, duration=6.0, key=getkey())
    info = nv.probe(stim.path)
    assert info.n_frames == 180 and info.fps == pytest.approx(30.0)
    assert (info.width, info.height) == (320, 240)
    feats = nv.extract_motion(stim.path, crop=nv.Crop(scale=0.5), blur=1.0)
    # The spectral peak is within half a bin of the true rhythm (bin = 1 / 6 s).
    assert abs(_dominant_hz(feats) - 1 / stim.period) < 0.5 / 6.0


def test_noisy_ball_is_noisy_and_reproducible(tmp_path, getkey):
    key = getkey()
    a = nv.generate("ball_noisy", tmp_path / "a", duration=0.5, key=key)
    b = nv.generate("ball_noisy", tmp_path / "b", duration=0.5, key=key)
    fa, fb = next(nv.iter_frames(a.path)), next(nv.iter_frames(b.path))
    np.testing.assert_array_equal(fa, fb)
    clean = next(nv.iter_frames(nv.generate("ball", tmp_path / "c", duration=0.5).path))
    assert np.std(fa - clean) > 0.15
    with pytest.raises(TypeError, match="key="):
        nv.generate("ball_noisy", tmp_path, duration=0.5)


def test_grating_has_no_motion_rhythm(tmp_path):
    stim = nv.generate("grating", tmp_path, duration=3.0)
    assert stim.period is None
    feats = nv.extract_motion(stim.path, crop=nv.Crop(scale=0.5), blur=1.0)
    assert feats.energy.mean() > 0.01  # it moves ...
    assert feats.energy.std() / feats.energy.mean() < 0.03  # ... at a constant rate


def test_walker_is_a_rigid_kinematic_chain():
    height = 170.0
    L = {k: v * height for k, v in _SEG.items()}
    for phase in np.linspace(0, 2 * np.pi, 17):
        p = nv.walker_points(phase, height)
        assert p.shape == (13, 2)
        # joints: 0 head, 1-2 shoulders, 3-4 elbows, 5-6 wrists, 7-8 hips, 9-10 knees, 11-12 ankles
        for side in (0, 1):
            def seg(a, b):
                return np.linalg.norm(p[a + side] - p[b + side])
            assert seg(7, 9) == pytest.approx(L["thigh"])
            assert seg(9, 11) == pytest.approx(L["shank"])
            assert seg(1, 3) == pytest.approx(L["upper_arm"])
            assert seg(3, 5) == pytest.approx(L["forearm"])
    # Half a gait cycle later the two sides have swapped (left/right symmetry of gait),
    # apart from their small depth offsets in x.
    a, b = nv.walker_points(0.3), nv.walker_points(0.3 + np.pi)
    swap = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11]
    np.testing.assert_allclose(a[:, 1], b[swap, 1], atol=1e-9)


def test_unknown_stimulus(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        nv.generate("tiger", tmp_path)
