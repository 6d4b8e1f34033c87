"""Reading video: frames as written, bounded streaming, and clear errors for bad files."""

import numpy as np
import pytest
from ._video_helpers import moving_square_frames, write_lossless

import nrtjax.video as nv


def test_frames_are_the_frames_written(tmp_path):
    frames = moving_square_frames(12)
    path = write_lossless(tmp_path / "v.avi", frames)
    info = nv.probe(path)
    assert (info.width, info.height, info.n_frames) == (64, 48, 12)
    assert info.fps == pytest.approx(30.0)
    got = list(nv.iter_frames(path))
    assert len(got) == 12
    for a, b in zip(got, frames):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b / 255.0, atol=1e-7)


def test_roi_and_downscale(tmp_path):
    frames = moving_square_frames(3)
    path = write_lossless(tmp_path / "v.avi", frames)
    roi = (4, 6, 40, 30)
    got = list(nv.iter_frames(path, crop=nv.Crop(roi=roi, scale=0.5)))
    # Reference: crop, then average 2x2 blocks (area interpolation at an exact factor 2).
    ref = frames[1][6:36, 4:44].astype(np.float64) / 255
    ref = ref.reshape(15, 2, 20, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(got[1], ref, atol=1e-6)


def test_streaming_is_lazy(tmp_path):
    path = write_lossless(tmp_path / "v.avi", moving_square_frames(10))
    gen = nv.iter_frames(path)
    first = next(gen)  # one frame decoded, the rest not yet
    assert first.shape == (48, 64)
    gen.close()
    assert len(list(nv.iter_frames(path, max_frames=4))) == 4


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="video="):
        nv.probe(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path):
    path = tmp_path / "fake.avi"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(nv.VideoError, match="cannot open"):
        list(nv.iter_frames(path))


def test_zero_frames(tmp_path):
    import cv2

    path = tmp_path / "empty.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48)).release()
    with pytest.raises(nv.VideoError, match="no decodable frame"):
        list(nv.iter_frames(path))
    with pytest.raises(nv.VideoError, match="no decodable frame"):
        nv.extract_motion(path)


def test_corrupt_part_way_keeps_what_was_read(tmp_path):
    frames = moving_square_frames(60)
    path = write_lossless(tmp_path / "v.avi", frames)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut the stream in the middle
    with pytest.warns(nv.VideoTruncatedWarning, match=r"stopped at frame \d+ \(t = .* s\) of 60"):
        got = list(nv.iter_frames(path))
    assert 5 < len(got) < 60
    for a, b in zip(got, frames):  # what was read is intact
        np.testing.assert_allclose(a, b / 255.0, atol=1e-7)
    with pytest.warns(nv.VideoTruncatedWarning):
        feats = nv.extract_motion(path)
    assert not feats.complete and feats.n_frames == len(got)


def test_all_static_video(tmp_path):
    frame = moving_square_frames(1)[0]
    path = write_lossless(tmp_path / "still.avi", [frame] * 10)
    with pytest.raises(nv.VideoError, match="static"):
        nv.extract_motion(path)


def test_bad_crop(tmp_path):
    path = write_lossless(tmp_path / "v.avi", moving_square_frames(3))
    with pytest.raises(nv.VideoError, match="outside the 64x48 frame"):
        list(nv.iter_frames(path, crop=nv.Crop(roi=(40, 0, 40, 10))))
    with pytest.raises(ValueError, match="scale"):
        nv.Crop(scale=1.5)
    with pytest.raises(ValueError, match="roi"):
        nv.Crop(roi=(0, 0, 1, 10))
