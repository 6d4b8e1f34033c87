"""Motion features against independent NumPy computations and analytic ground truth."""

import numpy as np
import pytest
from ._video_helpers import moving_square_frames, write_lossless

import nrtjax.video as nv
from nrtjax.video.stimuli import ball_height


def _numpy_energy(frames, roi=None):
    g = np.stack(frames).astype(np.float64) / 255.0
    if roi is not None:
        x, y, w, h = roi
        g = g[:, y:y + h, x:x + w]
    return np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))


def test_difference_energy_matches_numpy(tmp_path):
    frames = moving_square_frames(40)
    path = write_lossless(tmp_path / "v.avi", frames, fps=25.0)
    feats = nv.extract_motion(path, method="difference")
    np.testing.assert_allclose(feats.energy, _numpy_energy(frames), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(feats.times, np.arange(1, 40) / 25.0)
    assert feats.complete and feats.n_frames == 40 and feats.method == "difference"
    roi = (10, 5, 30, 30)
    feats = nv.extract_motion(path, crop=nv.Crop(roi=roi))
    np.testing.assert_allclose(feats.energy, _numpy_energy(frames, roi), rtol=1e-5, atol=1e-8)


def test_vertical_position_of_a_moving_bar(tmp_path):
    # A horizontal bar jumps between rows on a black background: the changed rows are
    # the old and new bar, so the centroid height is their mean (computed by hand).
    h, w = 60, 40
    rows = [10, 30, 50, 20, 40]
    frames = []
    for r in rows:
        f = np.zeros((h, w), np.uint8)
        f[r:r + 4] = 200
        frames.append(f)
    feats = nv.extract_motion(write_lossless(tmp_path / "bar.avi", frames))
    def centre(r):
        return r + 2.0
    expect = [1 - 0.5 * (centre(a) + centre(b)) / h for a, b in zip(rows[:-1], rows[1:])]
    np.testing.assert_allclose(feats.vertical, expect, atol=1e-9)


@pytest.fixture(scope="module")
def ball(tmp_path_factory):
    return nv.generate("ball", tmp_path_factory.mktemp("ball"), duration=4.0)


def _true_speed_and_height(times, period):
    h_prev = ball_height(times - 1 / 30, period, 150.0)
    h_now = ball_height(times, period, 150.0)
    return np.abs(h_now - h_prev), 0.5 * (h_prev + h_now)


@pytest.mark.parametrize("method", ["difference", "flow"])
def test_ball_energy_follows_speed(ball, method):
    feats = nv.extract_motion(ball.path, method=method, crop=nv.Crop(scale=0.5), blur=1.0)
    speed, _ = _true_speed_and_height(feats.times, ball.period)
    r = np.corrcoef(feats.energy, speed)[0, 1]
    assert r > 0.9, r
    assert np.all(np.isfinite(feats.energy)) and np.all(np.isfinite(feats.vertical))


def test_ball_vertical_position_follows_height(ball):
    feats = nv.extract_motion(ball.path)
    _, height = _true_speed_and_height(feats.times, ball.period)
    # Ball centre height in the frame: floor at 220 px, radius 14, frame height 240.
    truth = 1 - (220.0 - 14.0 - height) / 240.0
    moving = np.abs(np.gradient(height)) > 0.5
    err = np.abs(feats.vertical - truth)[moving]
    assert np.median(err) < 0.02 and np.max(err) < 0.06, (np.median(err), np.max(err))


def test_flow_reports_aperture_problem(tmp_path):
    g = nv.generate("grating", tmp_path, duration=0.5)
    with pytest.raises(nv.VideoError, match="aperture"):
        nv.extract_motion(g.path, method="flow", crop=nv.Crop(scale=0.5))
    with pytest.raises(ValueError, match="method"):
        nv.extract_motion(g.path, method="magic")


def test_resample_and_smooth():
    t = np.arange(1, 31) / 30.0
    e = 1.0 + t**2
    feats = nv.MotionFeatures(t, e, np.linspace(0, 1, 30), 30.0, "difference", 31, True)
    ts, e2, v2 = nv.resample(feats, 100.0)
    assert ts[0] == 0 and ts[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(e2, np.interp(ts, t, e))
    ts, e3, _ = nv.resample(feats, 100.0, smooth=0.05)
    # Gaussian smoothing of a convex curve raises it by about sigma^2 (second derivative 2).
    inner = (ts > 0.3) & (ts < 0.7)
    np.testing.assert_allclose((e3 - e2)[inner], 0.05**2, rtol=0.1)
