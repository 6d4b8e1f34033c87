"""Motion features of a video: motion energy and the vertical position of the moving mass.

Two methods, chosen by name at the call (`method="difference"` or `"flow"`):

- **difference**: motion energy $E_k = \\langle |I_k - I_{k-1}| \\rangle_{x,y}$, the mean
  absolute change of grayscale intensity (in $[0, 1]$) between frame $k$ and the one
  before, over the region of interest (frame differencing; e.g. Ramseyer & Tschacher
  2011, "motion energy analysis").
- **flow**: $E_k = \\langle \\|v_k\\| \\rangle_{x,y}$, the mean magnitude of the dense
  optical flow (Farnebäck 2003) between the same frames, in pixels of the original frame
  per frame.

The vertical position is the centroid height of the change map $m_k$ ($|I_k - I_{k-1}|$
or $\\|v_k\\|$) after removing its noise floor: weights $\\max(m_k - 3\\hat\\sigma_k, 0)$ with
$\\hat\\sigma_k = \\mathrm{median}(m_k)/0.6745$ (the median absolute value of Gaussian noise),
as a fraction of the analysed image's height, 0 at the bottom and 1 at the top. A frame
without motion holds the previous position.

**References:**

Farnebäck, G. (2003). Two-frame motion estimation based on polynomial expansion.
SCIA 2003, LNCS 2749, 363-370.

Ramseyer, F. & Tschacher, W. (2011). Nonverbal synchrony in psychotherapy: coordinated
body movement reflects relationship quality and outcome. J. Consult. Clin. Psychol.
79(3), 284-295.
"""

import dataclasses
import os
import warnings
from collections.abc import Callable

import cv2
import numpy as np
import scipy.ndimage

from .io import Crop, VideoError, VideoTruncatedWarning, iter_frames, probe

METHODS = ("difference", "flow")


@dataclasses.dataclass(frozen=True)
class MotionFeatures:
    """Per-frame motion features of a video.

    **Fields:**

    - `times`: time of each feature in seconds, $t_k = k / \\text{fps}$ for frames
        $k = 1 .. N-1$ (a difference needs the frame before), shape `(frames - 1,)`.
    - `energy`: motion energy at those times (see the module docstring for units).
    - `vertical`: vertical position of the moving mass in $[0, 1]$ (1 = top).
    - `fps`: the video's frame rate; `method`: `"difference"` or `"flow"`.
    - `n_frames`: frames decoded; `complete`: False if the stream stopped before the
        frame count in its header (see `VideoTruncatedWarning`).
    """

    times: np.ndarray
    energy: np.ndarray
    vertical: np.ndarray
    fps: float
    method: str
    n_frames: int
    complete: bool


def _noise_weights(m: np.ndarray) -> np.ndarray:
    floor = 3.0 * float(np.median(m)) / 0.6745
    return np.maximum(m - floor, 0.0)


def _centroid_height(m: np.ndarray) -> float:
    w = _noise_weights(m)
    total = float(w.sum())
    if total <= 0:
        return np.nan
    rows = np.arange(m.shape[0], dtype=np.float64) + 0.5
    return 1.0 - float(w.sum(axis=1) @ rows) / (total * m.shape[0])


def _change_map(prev: np.ndarray, cur: np.ndarray, method: str, scale: float) -> np.ndarray:
    if method == "difference":
        return np.abs(cur - prev)
    flow = cv2.calcOpticalFlowFarneback(
        (prev * 255).astype(np.uint8), (cur * 255).astype(np.uint8), None,
        pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    return np.hypot(flow[..., 0], flow[..., 1]) / scale


def _hold(v: np.ndarray) -> np.ndarray:
    """Fill NaNs with the previous finite value (leading ones with the first; 0.5 if none)."""
    ok = np.isfinite(v)
    if not ok.any():
        return np.full_like(v, 0.5)
    idx = np.where(ok, np.arange(v.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = v[idx]
    out[: int(np.argmax(ok))] = v[int(np.argmax(ok))]
    return out


def extract_motion(
    path: str | os.PathLike,
    *,
    method: str = "difference",
    crop: Crop = Crop(),
    blur: float = 0.0,
    max_frames: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> MotionFeatures:
    """Read a video frame by frame and compute its motion energy and vertical position.

    Memory holds two frames at a time, whatever the video's length.

    **Arguments:**

    - `path`: a video file OpenCV opens.
    - `method`: `"difference"` (frame differencing) or `"flow"` (Farnebäck optical flow).
    - `crop`: region of interest and downscaling ([`nrtjax.video.Crop`][]).
    - `blur`: standard deviation in (analysed) pixels of a Gaussian blur applied to each
        frame before differencing, which suppresses pixel noise; 0 for none.
    - `max_frames`: read at most this many frames.
    - `progress`: called with 1 after each frame (e.g. `tqdm.update`).

    **Returns:** [`nrtjax.video.MotionFeatures`][].

    **Raises:** `FileNotFoundError`; `VideoError` for a file that will not open, has
    fewer than 2 frames, or does not move at all (all-static video). A stream that
    stops part-way warns (`VideoTruncatedWarning`) and keeps what was read.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if blur < 0:
        raise ValueError(f"blur must be >= 0 pixels, got {blur!r}.")
    info = probe(path)
    energy, vertical = [], []
    prev = None
    n = 0
    changed = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VideoTruncatedWarning)
        for frame in iter_frames(path, crop=crop, max_frames=max_frames):
            if blur > 0:
                frame = cv2.GaussianBlur(frame, (0, 0), blur)
            if prev is not None:
                m = _change_map(prev, frame, method, crop.scale)
                changed = max(changed, float(np.max(np.abs(frame - prev))))
                energy.append(float(m.mean()))
                vertical.append(_centroid_height(m))
            prev = frame
            n += 1
            if progress is not None:
                progress(1)
        truncated = [w for w in caught if issubclass(w.category, VideoTruncatedWarning)]
        others = [w for w in caught if not issubclass(w.category, VideoTruncatedWarning)]
    for w in others:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for w in truncated:
        warnings.warn(str(w.message), VideoTruncatedWarning, stacklevel=2)
    if n < 2:
        raise VideoError(f"{info.path} has only {n} decodable frame; motion needs at least 2.")
    energy = np.asarray(energy)
    if not np.all(np.isfinite(energy)):
        raise VideoError(f"Motion energy of {info.path} is not finite; the stream is corrupt.")
    if changed <= 1e-6:
        raise VideoError(f"{info.path} is static: no pixel changes over its {n} frames, so "
                         "there is no motion to follow. Check the region of interest (roi=).")
    if float(energy.max()) <= 1e-6:
        raise VideoError(f"Optical flow found no motion in {info.path} although its pixels "
                         "change: a pattern without texture along one direction (a grating, "
                         "the aperture problem) has no measurable flow. Use method=difference.")
    return MotionFeatures(np.arange(1, n) / info.fps, energy, _hold(np.asarray(vertical)),
                          info.fps, method, n, not truncated)


def resample(
    features: MotionFeatures, fs: float | int, *, smooth: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth the features and resample them onto the oscillators' grid $t = k / f_s$.

    A Gaussian of standard deviation `smooth` seconds is applied at the video rate, then
    linear interpolation gives values at $t = 0, 1/f_s, \\dots$ up to the last frame
    (the first feature is held before its time).

    **Returns:** `(ts, energy, vertical)`, each of shape `(samples,)`.
    """
    if not fs > 0:
        raise ValueError(f"fs must be positive, got {fs!r}.")
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0 seconds, got {smooth!r}.")
    e, v = features.energy, features.vertical
    if smooth > 0:
        sigma = smooth * features.fps
        e = scipy.ndimage.gaussian_filter1d(e, sigma, mode="nearest")
        v = scipy.ndimage.gaussian_filter1d(v, sigma, mode="nearest")
    ts = np.arange(int(np.floor(features.times[-1] * fs + 1e-9)) + 1) / fs
    return ts, np.interp(ts, features.times, e), np.interp(ts, features.times, v)
