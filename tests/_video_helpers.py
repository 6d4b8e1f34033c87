"""Small video files for the video tests, written losslessly (FFV1) so that the decoded
frames are exactly the arrays written: the references in the tests use those arrays."""

from pathlib import Path

import cv2
import numpy as np


def write_lossless(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    """Write uint8 grayscale frames as an FFV1 AVI (R = G = B, so gray decodes exactly)."""
    h, w = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def moving_square_frames(n: int = 40, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    """A bright square moving on a textured background, plus a little noise."""
    rng = np.random.default_rng(seed)
    background = rng.integers(20, 60, (h, w)).astype(np.int32)
    frames = []
    for k in range(n):
        img = background + rng.integers(0, 4, (h, w))
        y = int(8 + 20 * (0.5 + 0.5 * np.sin(2 * np.pi * k / 15)))
        x = 5 + k % 40
        img[y:y + 10, x:x + 10] = 230
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames
