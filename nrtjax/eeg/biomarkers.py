"""Cognitive-state biomarkers from band powers, normalised to a per-subject baseline.

| biomarker | formula | reference |
|---|---|---|
| engagement | $\\beta / (\\alpha + \\theta)$ | Pope, Bogart & Bartolome 1995 |
| relaxation | $\\alpha / \\beta$ | Ray & Cole 1985; Klimesch 1999 |
| stress | $\\beta_{high} / (\\alpha + \\beta_{low})$ (20-30 Hz over 8-20 Hz) | Ray & Cole 1985; Egner & Gruzelier 2004 (see below) |
| attention | $\\beta / \\theta$ (inverse theta/beta ratio) | Lubar 1991; Angelidis et al. 2016 |

Powers are averaged over the clean channels of each window first. Each raw ratio is then
divided by its median over a baseline segment of the same subject, so a normalised value
is a positive number with 1 at the subject's baseline (2 = twice the baseline ratio);
individual differences in amplitude, alpha frequency and electrode gain cancel.
"""

import dataclasses

import numpy as np

from .artifacts import ArtifactThresholds, blink_trace, clean_mean, exclude_bad_channels, window_artifacts
from .bands import BANDS, sliding_band_powers
from .io import EEGRecording, filter_eeg

BIOMARKERS = ("engagement", "relaxation", "stress", "attention")
"""The biomarker names, in the order of the last axis of the biomarker arrays."""
_B = {name: i for i, name in enumerate(BANDS)}


def biomarkers(powers: np.ndarray) -> np.ndarray:
    """Raw biomarker ratios from band powers.

    **Arguments:**

    - `powers`: band powers `(..., bands)` in the order of `nrtjax.eeg.bands.BANDS`.

    **Returns:** `(..., 4)`: engagement, relaxation, stress, attention (see the module
    table), each a positive ratio of powers.

    No single validated EEG stress index exists; ours is an arousal ratio built on the
    findings that beta rises with emotional processing while alpha falls (Ray & Cole
    1985) and that low beta (13-20 Hz) accompanies calm, focused alertness (Egner &
    Gruzelier 2004): high beta (20-30 Hz) relative to alpha plus low beta, so that focused
    attention (more low beta, less alpha) raises it much less than stress does.

    **References:**

    Pope, A. T., Bogart, E. H. & Bartolome, D. S. (1995). Biocybernetic system evaluates
    indices of operator engagement in automated task. Biol. Psychol. 40, 187-195.

    Ray, W. J. & Cole, H. W. (1985). EEG alpha activity reflects attentional demands, and
    beta activity reflects emotional and cognitive processes. Science 228, 750-752.

    Klimesch, W. (1999). EEG alpha and theta oscillations reflect cognitive and memory
    performance. Brain Res. Rev. 29, 169-195.

    Egner, T. & Gruzelier, J. H. (2004). EEG biofeedback of low beta band components:
    frequency-specific effects on variables of attention and event-related brain
    potentials. Clin. Neurophysiol. 115, 131-139.

    Lubar, J. F. (1991). Discourse on the development of EEG diagnostics and biofeedback
    for attention-deficit/hyperactivity disorders. Biofeedback Self-Regul. 16, 201-225.

    Angelidis, A., van der Does, W., Schakel, L. & Putman, P. (2016). Frontal EEG
    theta/beta ratio as an electrophysiological marker for attentional control and its
    test-retest reliability. Biol. Psychol. 121, 49-52.
    """
    p = np.maximum(np.asarray(powers, dtype=np.float64), 1e-300)
    t, a, b, hb, lb = (p[..., _B[k]] for k in ("theta", "alpha", "beta", "high_beta",
                                                 "low_beta"))
    return np.stack([b / (a + t), a / b, hb / (a + lb), b / t], axis=-1)


@dataclasses.dataclass(frozen=True)
class Baseline:
    """Per-subject medians of the raw biomarkers and log relative band powers."""

    biomarkers: np.ndarray
    log_relative: np.ndarray

    @classmethod
    def from_powers(cls, powers: np.ndarray) -> "Baseline":
        """The medians over the windows of a baseline segment, `powers (windows, bands)`."""
        return cls(np.median(biomarkers(powers), axis=0),
                   np.median(_log_relative(powers), axis=0))


def _log_relative(powers: np.ndarray) -> np.ndarray:
    # The five canonical bands and the two beta sub-bands, relative to the 1-45 Hz total.
    p = np.maximum(powers[..., :7], 1e-300)
    return np.log(p / p[..., :5].sum(-1, keepdims=True))


def features(powers: np.ndarray, baseline: Baseline) -> np.ndarray:
    """Classifier features: log normalised biomarkers (4) and baseline-relative log relative
    band powers (delta to gamma, high and low beta: 7), shape `(..., 11)`."""
    return np.concatenate([np.log(biomarkers(powers) / baseline.biomarkers),
                           _log_relative(powers) - baseline.log_relative], axis=-1)


@dataclasses.dataclass(frozen=True)
class Analysis:
    """The offline analysis of a recording.

    **Fields:** `times` (window end times, s), `powers` (clean-channel mean band powers,
    `(windows, bands)`, V$^2$), `raw` (raw biomarkers `(windows, 4)`), `normalised`
    (`raw / baseline`), `features` (`(windows, 11)`), `good_fraction` (share of channels
    used per window), `bad_channels` (`{name: reason}`), `channels` (those analysed).
    """

    times: np.ndarray
    powers: np.ndarray
    raw: np.ndarray
    normalised: np.ndarray
    features: np.ndarray
    good_fraction: np.ndarray
    bad_channels: dict[str, str]
    channels: tuple[str, ...]


def prepare(rec: EEGRecording, *, line_freq: float | None = 50.0,
            thresholds: ArtifactThresholds = ArtifactThresholds()
            ) -> tuple[EEGRecording, dict[str, str]]:
    """Exclude bad channels (on the raw samples, with a warning) and filter 1-45 Hz causally
    with a `line_freq` notch. **Returns:** `(filtered good channels, bad channels)`."""
    good, bad = exclude_bad_channels(rec, thresholds)
    return filter_eeg(good, line_freq=line_freq), bad


def window_powers(rec: EEGRecording, *, window_s: float = 2.0, step_s: float = 0.5,
                  thresholds: ArtifactThresholds = ArtifactThresholds()):
    """Clean-channel mean band powers in sliding windows of a filtered recording.

    **Returns:** `(times, powers (windows, bands), good_fraction (windows,))`.
    """
    times, powers = sliding_band_powers(rec.data, rec.fs, window_s=window_s, step_s=step_s)
    win = int(round(window_s * rec.fs))
    starts = np.round(times * rec.fs).astype(int) - win
    idx = starts[:, None] + np.arange(win)[None, :]
    ptp = np.ptp(blink_trace(rec.data, rec.fs)[:, idx], axis=-1).T   # (windows, ch)
    blink, muscle = window_artifacts(ptp, powers, thresholds)
    mean, frac = clean_mean(powers, blink | muscle)
    return times, mean, frac


def analyse(rec: EEGRecording, *, baseline: EEGRecording | float = 30.0,
            window_s: float = 2.0, step_s: float = 0.5, line_freq: float | None = 50.0,
            thresholds: ArtifactThresholds = ArtifactThresholds()) -> tuple[Analysis, Baseline]:
    """Band powers, biomarkers and features of a recording, normalised to a baseline.

    **Arguments:**

    - `rec`: the recording (unfiltered; see [`nrtjax.eeg.io.load_eeg`][]).
    - `baseline`: a baseline recording of the same subject (e.g. rest before the task),
        or a number of seconds: the recording's first seconds (all of it if shorter).
    - `window_s`, `step_s`: sliding window and hop in seconds.
    - `line_freq`: mains frequency to notch (None: no notch).

    **Returns:** `(Analysis, Baseline)`.

    **Raises:** `EEGError` when every channel is unusable.

    **Warns:** `BadChannelWarning` naming excluded channels.
    """
    good, bad = prepare(rec, line_freq=line_freq, thresholds=thresholds)
    times, powers, frac = window_powers(good, window_s=window_s, step_s=step_s,
                                        thresholds=thresholds)
    if isinstance(baseline, EEGRecording):
        base_rec = filter_eeg(baseline.select(list(good.ch_names)), line_freq=line_freq)
        _, base_powers, _ = window_powers(base_rec, window_s=window_s, step_s=step_s,
                                          thresholds=thresholds)
    else:
        sel = times <= max(float(baseline), times[0])
        base_powers = powers[sel]
    base = Baseline.from_powers(base_powers)
    raw = biomarkers(powers)
    return Analysis(times, powers, raw, raw / base.biomarkers, features(powers, base), frac,
                    bad, good.ch_names), base
