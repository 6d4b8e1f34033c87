"""Mixing with headroom: sum tracks with gains, normalise to a peak level, measure peaks.

`normalize` guarantees its target: after it, no sample's magnitude exceeds
$10^{\\text{peak\\_dbfs}/20}$ (the result is clipped to the target afterwards, which only ever
moves a sample by a rounding error), so a mix written with
`nrtjax.audio.write_wav` never clips.
"""

from collections.abc import Sequence

import numpy as np


def db_to_gain(db: float) -> float:
    """Decibels to a linear amplitude factor, $10^{dB/20}$."""
    return float(10.0 ** (float(db) / 20.0))


def peak_dbfs(audio: np.ndarray) -> float:
    """The peak level in dB relative to full scale (1.0); `-inf` for silence."""
    audio = np.asarray(audio)
    if audio.size == 0:
        raise ValueError("peak_dbfs of an empty signal is undefined.")
    peak = float(np.max(np.abs(audio)))
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def mix(tracks: Sequence[np.ndarray], gains: Sequence[float] | None = None) -> np.ndarray:
    """Sum tracks, each scaled by its linear gain.

    **Arguments:**

    - `tracks`: arrays of shape `(samples,)` or `(samples, channels)`; shorter tracks are
        padded with silence at the end to the longest. Mono and multichannel tracks mix
        by broadcasting a mono track to every channel.
    - `gains`: one linear gain per track (e.g. `db_to_gain(-6)`), default all 1.

    **Returns:** float64 array of the longest length (not normalised).

    **Raises:** `ValueError` for no tracks, a count mismatch, non-finite samples or gains,
    or channel counts that do not broadcast.
    """
    if len(tracks) == 0:
        raise ValueError("mix needs at least one track.")
    gains = [1.0] * len(tracks) if gains is None else [float(g) for g in gains]
    if len(gains) != len(tracks):
        raise ValueError(f"mix got {len(tracks)} tracks but {len(gains)} gains; give one per "
                         "track.")
    arrays = [np.asarray(t, dtype=np.float64) for t in tracks]
    for i, (a, g) in enumerate(zip(arrays, gains)):
        if a.ndim not in (1, 2):
            raise ValueError(f"Track {i} has shape {a.shape}; use (samples,) or "
                             "(samples, channels).")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"Track {i} contains NaN or inf samples.")
        if not np.isfinite(g):
            raise ValueError(f"Gain {i} is not finite: {g!r}.")
    n = max(a.shape[0] for a in arrays)
    channels = {a.shape[1] for a in arrays if a.ndim == 2}
    if len(channels) > 1:
        raise ValueError(f"Tracks have different channel counts {sorted(channels)}; mix them to "
                         "a common layout first.")
    shape = (n, channels.pop()) if channels else (n,)
    out = np.zeros(shape)
    for a, g in zip(arrays, gains):
        if a.ndim == 1 and out.ndim == 2:
            a = a[:, None]
        out[: a.shape[0]] += g * a
    return out


def normalize(audio: np.ndarray, peak_dbfs: float = -1.0) -> np.ndarray:
    """Scale `audio` so that its peak sits exactly at `peak_dbfs` dBFS (default -1 dBFS).

    Both quiet and loud input are scaled (this is peak normalisation, not a limiter).
    Silence is returned unchanged (as float64 zeros).

    **Arguments:**

    - `audio`: any-shaped float array with finite samples.
    - `peak_dbfs`: target peak in dB relative to full scale; must be <= 0.

    **Returns:** float64 array, same shape, with `max|x| <= 10**(peak_dbfs/20)`.

    **Raises:** `ValueError` for empty or non-finite audio, or a target above 0 dBFS.
    """
    if not (np.isfinite(peak_dbfs) and peak_dbfs <= 0.0):
        raise ValueError(f"peak_dbfs must be a finite level <= 0 dBFS, got {peak_dbfs!r}.")
    audio = np.asarray(audio, dtype=np.float64)
    if audio.size == 0:
        raise ValueError("Cannot normalise an empty signal.")
    if not np.all(np.isfinite(audio)):
        raise ValueError("Cannot normalise audio with NaN or inf samples.")
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0:
        return audio.copy()
    target = db_to_gain(peak_dbfs)
    # x * (target / peak) can exceed target by one ulp; the clip removes exactly that.
    return np.clip(audio * (target / peak), -target, target)


def soft_limit(
    audio: np.ndarray, peak_dbfs: float = -1.0, *, knee_dbfs: float = -6.0
) -> np.ndarray:
    """A memoryless soft limiter for streams (which cannot be peak-normalised in advance).

    Samples below the knee $k$ pass unchanged; above it the magnitude is compressed as
    $k + (p - k)\\tanh((|x| - k)/(p - k))$, which is continuous with slope 1 at the knee and
    stays strictly below the ceiling $p$. Being per-sample, it gives the same output
    whatever the block boundaries.

    **Arguments:** `audio` (finite float array), `peak_dbfs` (the ceiling $p$, <= 0 dBFS),
    `knee_dbfs` (the knee $k$, below `peak_dbfs`).

    **Returns:** float64 array of the same shape with `max|x| < 10**(peak_dbfs/20)`.
    """
    if not (np.isfinite(peak_dbfs) and peak_dbfs <= 0.0 and knee_dbfs < peak_dbfs):
        raise ValueError(f"Need knee_dbfs < peak_dbfs <= 0, got {knee_dbfs!r}, {peak_dbfs!r}.")
    audio = np.asarray(audio, dtype=np.float64)
    if not np.all(np.isfinite(audio)):
        raise ValueError("Cannot limit audio with NaN or inf samples.")
    p, k = db_to_gain(peak_dbfs), db_to_gain(knee_dbfs)
    mag = np.abs(audio)
    over = k + (p - k) * np.tanh((mag - k) / (p - k))
    # tanh rounds to exactly 1 far above the knee; keep the ceiling strict.
    over = np.minimum(over, np.nextafter(p, 0.0))
    return np.where(mag > k, np.sign(audio) * over, audio)
