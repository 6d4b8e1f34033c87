"""Artefacts: flat, clipped and noisy channels (excluded with a warning naming them), and
blinks and muscle bursts (excluded per window and channel)."""

import dataclasses
import warnings

import numpy as np

from .io import EEGError, EEGRecording


class BadChannelWarning(UserWarning):
    """Some channels were excluded as flat, clipped or noisy; the rest are analysed."""


@dataclasses.dataclass(frozen=True)
class ArtifactThresholds:
    """Thresholds of the artefact detectors (defaults for scalp EEG in volts).

    - `flat_uv`: a channel whose standard deviation is below this (µV) is flat.
    - `clip_fraction`: a channel with more than this fraction of samples held (two or
        more in a row) at its minimum or maximum value is clipped (a saturated amplifier
        or ADC rail).
    - `noise_ratio`: a channel whose variance exceeds this multiple of the median
        channel's is noisy (a loose electrode).
    - `blink_uv`: a window whose peak-to-peak amplitude on a channel exceeds this (µV)
        holds a blink or movement on that channel (blinks reach 100-400 µV frontally,
        background EEG stays below about 100 µV; Croft & Barry 2000).
    - `muscle_ratio`: a window whose gamma (30-45 Hz) power exceeds this fraction of
        its 1-45 Hz power holds muscle activity (EMG is broadband above 20 Hz, while
        gamma is a few per cent of scalp EEG power; Goncharova et al. 2003).
    """

    flat_uv: float = 0.5
    clip_fraction: float = 0.005
    noise_ratio: float = 25.0
    blink_uv: float = 100.0
    muscle_ratio: float = 0.3


def bad_channels(rec: EEGRecording, thresholds: ArtifactThresholds = ArtifactThresholds()
                 ) -> dict[str, str]:
    """Flat, clipped and noisy channels of a recording, `{name: reason}`.

    Run it on the unfiltered recording: clipping is visible only in raw samples.
    """
    x = rec.data
    out = {}
    std = x.std(axis=1)
    hi, lo = x.max(axis=1, keepdims=True), x.min(axis=1, keepdims=True)
    tol = 1e-6 * np.maximum(hi - lo, 1e-30)
    rail = (x >= hi - tol) | (x <= lo + tol)
    # Clipping holds the rail for consecutive samples; a sampled sine or ramp only
    # touches its extreme for isolated samples, so those are not counted.
    held = rail & (np.pad(rail[:, 1:], ((0, 0), (0, 1))) | np.pad(rail[:, :-1], ((0, 0), (1, 0))))
    pinned = held.mean(axis=1)
    var = std**2
    ok = std >= thresholds.flat_uv * 1e-6
    ref = np.median(var[ok]) if ok.any() else 0.0
    for i, name in enumerate(rec.ch_names):
        if not ok[i]:
            out[name] = f"flat (std {std[i] * 1e6:.3g} µV)"
        elif pinned[i] > thresholds.clip_fraction:
            out[name] = f"clipped ({100 * pinned[i]:.1f}% of samples at the rails)"
        elif ref > 0 and var[i] > thresholds.noise_ratio * ref:
            out[name] = f"noisy (variance {var[i] / ref:.0f}x the median channel)"
    return out


def exclude_bad_channels(rec: EEGRecording,
                         thresholds: ArtifactThresholds = ArtifactThresholds()
                         ) -> tuple[EEGRecording, dict[str, str]]:
    """Drop flat, clipped and noisy channels, warning with their names.

    **Returns:** `(recording of the good channels, {bad name: reason})`.

    **Raises:** `EEGError` when every channel is bad (e.g. all flat).

    **Warns:** `BadChannelWarning` naming each excluded channel and why.
    """
    bad = bad_channels(rec, thresholds)
    if len(bad) == len(rec.ch_names):
        detail = "; ".join(f"{k}: {v}" for k, v in bad.items())
        raise EEGError(f"All {len(bad)} EEG channels of {rec.source or 'the recording'} are "
                       f"unusable ({detail}). Check the electrodes and the amplifier.")
    if bad:
        detail = "; ".join(f"{k}: {v}" for k, v in bad.items())
        warnings.warn(BadChannelWarning(
            f"Excluded {len(bad)} of {len(rec.ch_names)} channels of "
            f"{rec.source or 'the recording'}: {detail}. Analysing the other "
            f"{len(rec.ch_names) - len(bad)}."), stacklevel=2)
        return rec.select([n for n in rec.ch_names if n not in bad]), bad
    return rec, bad


def blink_trace(x: np.ndarray, fs: float) -> np.ndarray:
    """`x (ch, time)` smoothed by a causal 100 ms moving average: it nulls 10 Hz alpha and
    damps faster rhythms, and keeps blinks (200-400 ms deflections) for the amplitude test."""
    k = max(int(round(0.1 * fs)), 1)
    c = np.cumsum(np.pad(x, ((0, 0), (k, 0)), mode="edge"), axis=1)
    return (c[:, k:] - c[:, :-k]) / k


def window_artifacts(ptp: np.ndarray, powers: np.ndarray,
                     thresholds: ArtifactThresholds = ArtifactThresholds()
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Blink and muscle masks per window and channel.

    **Arguments:**

    - `ptp`: peak-to-peak amplitude of each window and channel of
        [`nrtjax.eeg.artifacts.blink_trace`][] in volts, `(windows, ch)`.
    - `powers`: band powers `(windows, ch, bands)` in the order of
        `nrtjax.eeg.bands.BANDS` (delta, theta, alpha, beta, gamma, ...).

    **Returns:** `(blink, muscle)` boolean arrays of shape `(windows, ch)`.
    """
    blink = ptp > thresholds.blink_uv * 1e-6
    total = powers[..., :5].sum(-1)
    muscle = powers[..., 4] > thresholds.muscle_ratio * np.maximum(total, 1e-300)
    return blink, muscle


def clean_mean(powers: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average band powers over the clean channels of each window.

    A window with no clean channel holds the previous window's value (the first clean
    one's at the start); if no window is clean, the plain channel mean is used.

    **Returns:** `(powers (windows, bands), fraction of channels used (windows,))`.
    """
    good = ~bad
    n_good = good.sum(1)
    mean = (powers * good[..., None]).sum(1) / np.maximum(n_good, 1)[:, None]
    ok = n_good > 0
    if not ok.any():
        return powers.mean(1), np.zeros(len(powers))
    idx = np.where(ok, np.arange(len(ok)), 0)
    idx = np.maximum.accumulate(idx)
    idx[: np.argmax(ok)] = np.argmax(ok)
    return mean[idx], n_good / powers.shape[1]
