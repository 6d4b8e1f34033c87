"""Reading video with OpenCV, frame by frame, with clear errors for files that cannot be used.

Frames are decoded one at a time and handed to the caller, so memory stays bounded by a
frame (or two, for differencing) whatever the length of the video.
"""

import dataclasses
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np


class VideoError(ValueError):
    """A video that cannot be used: missing, unreadable, empty, or without motion."""


class VideoTruncatedWarning(UserWarning):
    """The stream stopped (corrupt or cut) before the frame count in its header."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    **Fields:** `path`; `fps` (frames per second); `n_frames` (the header's count, 0 if
    unknown); `width`, `height` in pixels; `duration` = `n_frames / fps` in seconds.
    """

    path: Path
    fps: float
    n_frames: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps


@dataclasses.dataclass(frozen=True)
class Crop:
    """Where frames are cut and how they are shrunk before analysis.

    **Fields:**

    - `roi`: region of interest `(x, y, width, height)` in pixels of the original frame,
        or `None` for the whole frame.
    - `scale`: resize factor in `(0, 1]` applied after cropping (area interpolation).
    """

    roi: tuple[int, int, int, int] | None = None
    scale: float = 1.0

    def __post_init__(self):
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must lie in (0, 1], got {self.scale!r}; it only shrinks.")
        if self.roi is not None:
            if len(self.roi) != 4 or any(int(v) != v for v in self.roi):
                raise ValueError(
                    f"roi must be four integers (x, y, width, height), got {self.roi!r}.")
            x, y, w, h = self.roi
            if x < 0 or y < 0 or w < 2 or h < 2:
                raise ValueError(f"roi {self.roi!r} needs x, y >= 0 and width, height >= 2.")

    def apply(self, gray: np.ndarray) -> np.ndarray:
        """Crop and resize one grayscale frame."""
        if self.roi is not None:
            x, y, w, h = (int(v) for v in self.roi)
            H, W = gray.shape
            if x + w > W or y + h > H:
                raise VideoError(f"roi {self.roi!r} reaches outside the {W}x{H} frame; "
                                 "choose x + width <= frame width and y + height <= height.")
            gray = gray[y:y + h, x:x + w]
        if self.scale < 1:
            h, w = gray.shape
            size = (max(2, round(w * self.scale)), max(2, round(h * self.scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        return gray


def _open(path: str | os.PathLike) -> tuple[cv2.VideoCapture, VideoInfo]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Video file not found: {path}. Check the path (video=...).")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"OpenCV cannot open {path}: it is not a video, is corrupt, or uses a "
                         "codec this OpenCV build lacks. Re-encode it, e.g. "
                         "`ffmpeg -i IN -c:v mjpeg OUT.avi`.")
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    info = VideoInfo(path, fps, max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))),
                     int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if not (np.isfinite(fps) and 0 < fps <= 1000):
        cap.release()
        raise VideoError(f"{path} reports a frame rate of {fps!r}; cannot place frames in time. "
                         "Re-encode it with a fixed frame rate.")
    return cap, info


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open a video and read its header (fps, frame count, size) without decoding it.

    **Raises:** `FileNotFoundError` for a missing file, `VideoError` for one OpenCV
    cannot open or with no usable frame rate.
    """
    cap, info = _open(path)
    cap.release()
    return info


def _to_gray(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def iter_frames(
    path: str | os.PathLike, *, crop: Crop = Crop(), max_frames: int | None = None
) -> Iterator[np.ndarray]:
    """Yield the frames of a video one by one as grayscale float32 arrays in $[0, 1]$.

    Memory holds one decoded frame at a time. If decoding stops before the frame count
    in the header (a cut or corrupt stream), the frames read so far are kept and a
    `VideoTruncatedWarning` says at which frame and time it stopped.

    **Arguments:**

    - `path`: any file OpenCV's FFmpeg back end opens (MP4, AVI, MKV, MOV, ...).
    - `crop`: region of interest and downscaling, see [`nrtjax.video.Crop`][].
    - `max_frames`: stop after this many frames (`None`: read to the end).

    **Raises:** `FileNotFoundError`, or `VideoError` if the file cannot be opened or
    holds no decodable frame.
    """
    cap, info = _open(path)
    count = 0
    try:
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            count += 1
            # To float before resizing, so that downscaling averages without re-quantising.
            yield crop.apply(_to_gray(frame).astype(np.float32) * np.float32(1 / 255))
    finally:
        cap.release()
    if count == 0:
        raise VideoError(f"{info.path} holds no decodable frame (header says {info.n_frames}). "
                         "The file is empty or its stream is corrupt from the start.")
    if max_frames is None and info.n_frames > 0 and count < info.n_frames - 1:
        warnings.warn(
            f"{info.path}: decoding stopped at frame {count} (t = {count / info.fps:.3f} s) of "
            f"{info.n_frames} in the header; the stream is cut or corrupt there. Using the "
            f"{count} frames read.", VideoTruncatedWarning, stacklevel=2)


def read_frames_at(
    path: str | os.PathLike, indices: list[int], *, crop: Crop = Crop()
) -> list[np.ndarray]:
    """Decode only the frames at `indices` (for figures), as RGB uint8 arrays.

    Frames past the end of the stream are skipped. `crop.scale` is applied; `crop.roi`
    too. **Raises:** as [`nrtjax.video.iter_frames`][].
    """
    cap, _ = _open(path)
    out = []
    try:
        for i in indices:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, frame = cap.read()
            if not ok:
                continue
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if crop.roi is not None:
                x, y, w, h = (int(v) for v in crop.roi)
                rgb = rgb[y:y + h, x:x + w]
            if crop.scale < 1:
                h, w = rgb.shape[:2]
                size = (max(2, round(w * crop.scale)), max(2, round(h * crop.scale)))
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            out.append(rgb)
    finally:
        cap.release()
    return out
