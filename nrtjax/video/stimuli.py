"""Stimulus videos with a known motion rhythm, written as real video files.

Four stimuli of the seed study's visual duet (30 fps, 10 s by default): a bouncing ball,
the same ball in heavy pixel noise, a drifting sinusoidal grating (motion without a
rhythm) and a point-light walker (a kinematic model of human gait). Each generator
writes an MJPEG AVI (intra-frame only, so no group-of-pictures rhythm is added by the
codec) atomically and returns a [`nrtjax.video.Stimulus`][] with its ground truth.
"""

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from jaxtyping import ArrayLike, PRNGKeyArray

from .._random import as_generator
from ..io import atomic_path

WIDTH, HEIGHT = 320, 240
STIMULI = ("ball", "ball_noisy", "grating", "walker")
"""The names of the generated stimuli `generate` accepts."""


@dataclasses.dataclass(frozen=True)
class Stimulus:
    """A generated video and its ground truth.

    **Fields:** `name`; `path`; `fps`; `duration` in seconds; `period`: the true period
    of the motion rhythm in seconds (the bounce period, the walker's step period), or
    `None` for the grating, whose motion energy is constant; `note`: what the period is.
    """

    name: str
    path: Path
    fps: float
    duration: float
    period: float | None
    note: str


def _disc(canvas: np.ndarray, cx: float, cy: float, r: float, value: float = 1.0) -> None:
    """Draw an antialiased disc (coverage ramps over one pixel) at subpixel position."""
    h, w = canvas.shape
    x0, x1 = max(0, int(cx - r - 2)), min(w, int(cx + r + 3))
    y0, y1 = max(0, int(cy - r - 2)), min(h, int(cy + r + 3))
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    cover = np.clip(r + 0.5 - np.hypot(xx - cx, yy - cy), 0.0, 1.0)
    patch = canvas[y0:y1, x0:x1]
    canvas[y0:y1, x0:x1] = patch + cover * (value - patch)


def write_video(path: str | os.PathLike, frames: Iterator[np.ndarray], fps: float) -> Path:
    """Write grayscale float frames in $[0, 1]$ as an MJPEG AVI, atomically.

    Frames are encoded as they come (bounded memory). **Raises:** `ValueError` if no
    frame is given or OpenCV cannot create the file.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = None
        n = 0
        try:
            for frame in frames:
                img = (np.clip(frame, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
                if writer is None:
                    h, w = img.shape
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
                    if not writer.isOpened():
                        raise ValueError(f"OpenCV cannot write an MJPEG AVI at {path}.")
                writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
                n += 1
        finally:
            if writer is not None:
                writer.release()
        if n == 0:
            raise ValueError(f"No frames given for {path}; refusing to write an empty video.")
    return path


def _times(fps: float, duration: float) -> np.ndarray:
    if not (fps > 0 and duration > 0):
        raise ValueError(f"fps and duration must be positive, got {fps!r}, {duration!r}.")
    return np.arange(int(round(fps * duration))) / fps


def ball_height(t: ArrayLike, period: float, apex: float) -> np.ndarray:
    """Height of a ball bouncing elastically: parabolic arcs, impact at $t = kT$."""
    u = np.mod(np.asarray(t, dtype=np.float64), period) / period
    return np.asarray(4.0 * apex * u * (1.0 - u))


def _ball_frames(ts, period, noise, rng) -> Iterator[np.ndarray]:
    radius, floor, apex = 14.0, HEIGHT - 20.0, 150.0
    for t in ts:
        img = np.full((HEIGHT, WIDTH), 0.1)
        img[int(floor):, :] = 0.35
        _disc(img, WIDTH / 2, floor - radius - float(ball_height(t, period, apex)), radius, 0.95)
        if noise > 0:
            img = img + noise * rng.standard_normal(img.shape)
        yield img


def _grating_frames(ts, speed, wavelength) -> Iterator[np.ndarray]:
    x = np.arange(WIDTH)[None, :]
    for t in ts:
        yield np.broadcast_to(0.5 + 0.4 * np.cos(2 * np.pi * (x - speed * t) / wavelength),
                              (HEIGHT, WIDTH))


# Segment lengths as fractions of body height (Winter, Biomechanics and Motor Control of
# Human Movement, 4th ed., 2009, Fig. 4.1).
_SEG = dict(thigh=0.245, shank=0.246, upper_arm=0.186, forearm=0.146, trunk=0.288,
            neck=0.052, head=0.130, shoulder=0.129, hip=0.095)


def walker_points(phase: float, height: float = 170.0) -> np.ndarray:
    """The 13 joint positions (x right, y up; pelvis at the origin) of a sagittal-view
    walker at gait phase `phase` (radians; one gait cycle = two steps).

    Joint angles are sinusoids of the gait phase with textbook amplitudes (hip flexion
    +-20 deg, knee 5-60 deg, arm swing +-15 deg, elbow 15-35 deg; Winter 2009), the right
    side half a cycle after the left, and the pelvis bobbing twice per cycle (2 % of
    height). Walking is in place, as on a treadmill (Cutting 1978; Troje 2002).

    **Returns:** `(13, 2)`: head, 2 shoulders, 2 elbows, 2 wrists, 2 hips, 2 knees, 2 ankles.
    """
    L = {k: v * height for k, v in _SEG.items()}
    bob = 0.02 * height * np.cos(2 * phase)
    pelvis = np.array([0.0, bob])
    neck = pelvis + [0.0, L["trunk"]]
    pts = [neck + [0.0, L["neck"] + 0.5 * L["head"]]]
    sides = []
    for k, (dx, ph) in enumerate(((-0.04 * height, phase), (0.04 * height, phase + np.pi))):
        hip_a = np.deg2rad(20.0) * np.sin(ph)
        knee_a = np.deg2rad(32.5 - 27.5 * np.cos(ph + 0.6))
        sh_a = -np.deg2rad(15.0) * np.sin(ph)
        el_a = np.deg2rad(25.0 - 10.0 * np.cos(ph))
        shoulder = neck + [dx * 0.5, 0.0]
        elbow = shoulder + L["upper_arm"] * np.array([np.sin(sh_a), -np.cos(sh_a)])
        wrist = elbow + L["forearm"] * np.array([np.sin(sh_a + el_a), -np.cos(sh_a + el_a)])
        hip = pelvis + [dx * 0.3, 0.0]
        knee = hip + L["thigh"] * np.array([np.sin(hip_a), -np.cos(hip_a)])
        ankle = knee + L["shank"] * np.array([np.sin(hip_a - knee_a), -np.cos(hip_a - knee_a)])
        sides.append((shoulder, elbow, wrist, hip, knee, ankle))
    for j in range(6):
        pts += [sides[0][j], sides[1][j]]
    return np.asarray(pts)


def _walker_frames(ts, step_period) -> Iterator[np.ndarray]:
    for t in ts:
        img = np.zeros((HEIGHT, WIDTH))
        pts = walker_points(np.pi * t / step_period)
        for x, y in pts:
            _disc(img, WIDTH / 2 + x, HEIGHT / 2 + 20.0 - y, 3.0, 1.0)
        yield img


def generate(
    name: str, out_dir: str | os.PathLike, *, fps: float = 30.0, duration: float = 10.0,
    period: float | None = None, key: PRNGKeyArray | None = None,
) -> Stimulus:
    """Write one of the four stimuli into `out_dir` as `NAME.avi`.

    **Arguments:**

    - `name`: `"ball"`, `"ball_noisy"`, `"grating"` or `"walker"`.
    - `out_dir`: directory for the file.
    - `fps`, `duration`: frame rate and length (defaults 30 fps, 10 s).
    - `period`: the rhythm's period in seconds: bounce period (default 0.6 s), the
        walker's step period (default 0.55 s, a 1.1 s gait cycle); for the grating, the
        luminance period at each pixel (default 0.8 s; its motion energy has no rhythm).
    - `key`: a JAX PRNG key for the pixel noise of `"ball_noisy"` (required there).

    **Returns:** a [`nrtjax.video.Stimulus`][].
    """
    ts = _times(fps, duration)
    path = Path(out_dir) / f"{name}.avi"
    makers: dict[str, Callable[[], tuple[Iterator[np.ndarray], float | None, str]]] = {
        "ball": lambda: (_ball_frames(ts, period or 0.6, 0.0, None), period or 0.6,
                         "bounce period"),
        "ball_noisy": lambda: (_ball_frames(ts, period or 0.6, 0.25, _noise(key)), period or 0.6,
                               "bounce period; pixel noise sd 0.25"),
        "grating": lambda: (_grating_frames(ts, 40.0 / (period or 0.8), 40.0), None,
                            "no motion rhythm: constant drift"),
        "walker": lambda: (_walker_frames(ts, period or 0.55), period or 0.55,
                           "step period (half a gait cycle)"),
    }
    if name not in makers:
        raise ValueError(f"Unknown stimulus {name!r}; choose one of {STIMULI}.")
    frames, true_period, note = makers[name]()
    write_video(path, frames, fps)
    return Stimulus(name, path, float(fps), float(ts.size / fps), true_period, note)


def _noise(key: PRNGKeyArray | None) -> np.random.Generator:
    return as_generator(key, what="The noisy ball's pixel noise")
