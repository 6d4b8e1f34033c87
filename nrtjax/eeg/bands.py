"""Band powers by Welch's method, in sliding windows."""

import numpy as np

# Canonical EEG bands in Hz, [low, high), then the sub-bands `high_beta` (20-30 Hz) and
# `low_beta` (13-20 Hz) used by the stress index (nrtjax.eeg.biomarkers).
BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
    "high_beta": (20.0, 30.0),
    "low_beta": (13.0, 20.0),
}
"""Band name -> (low, high) edges in Hz, as used for the band powers and biomarkers."""


def welch_psd(x: np.ndarray, fs: float, *, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """One-sided power spectral density by Welch's method.

    Segments of `nperseg` samples with 50% overlap, a periodic Hann window, the mean of
    each segment removed, periodograms scaled to a density (units$^2$/Hz) and averaged
    (Welch 1967). A sinusoid of amplitude $A$ integrates to $A^2/2$.

    **Arguments:**

    - `x`: samples, shape `(..., time)` with `time >= nperseg`.
    - `fs`: sampling rate in Hz; `nperseg`: segment length in samples.

    **Returns:** `(freqs, psd)`, shapes `(nperseg // 2 + 1,)` and `(..., nperseg // 2 + 1)`.

    **References:**

    Welch, P. D. (1967). The use of fast Fourier transform for the estimation of power
    spectra. IEEE Trans. Audio Electroacoust. 15(2), 70-73.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    if nperseg < 2 or n < nperseg:
        raise ValueError(f"Welch needs 2 <= nperseg <= samples, got nperseg={nperseg} for "
                         f"{n} samples; use a longer window.")
    step = nperseg - nperseg // 2                     # overlap of nperseg // 2 samples
    starts = np.arange(0, n - nperseg + 1, step)
    idx = starts[:, None] + np.arange(nperseg)[None, :]
    seg = x[..., idx]                                   # (..., segments, nperseg)
    seg = seg - seg.mean(-1, keepdims=True)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(nperseg) / nperseg)
    spec = np.abs(np.fft.rfft(seg * win, axis=-1)) ** 2 / (fs * np.sum(win**2))
    spec[..., 1:] *= 2.0
    if nperseg % 2 == 0:
        spec[..., -1] /= 2.0                            # the Nyquist bin has no mirror
    return np.fft.rfftfreq(nperseg, 1.0 / fs), spec.mean(-2)


def integrate_bands(freqs: np.ndarray, psd: np.ndarray,
                    bands: dict[str, tuple[float, float]] = BANDS) -> np.ndarray:
    """Band powers: the PSD summed over bins $f \\in [f_{lo}, f_{hi})$ times the bin width.

    **Returns:** shape `(..., len(bands))`, in the order of `bands`.
    """
    df = freqs[1] - freqs[0]
    out = []
    for lo, hi in bands.values():
        sel = (freqs >= lo) & (freqs < hi)
        if not sel.any():
            raise ValueError(f"Band {lo}-{hi} Hz holds no frequency bin (resolution {df:g} Hz, "
                             f"top {freqs[-1]:g} Hz); use longer segments or a faster rate.")
        out.append(psd[..., sel].sum(-1) * df)
    return np.stack(out, axis=-1)


def band_powers(x: np.ndarray, fs: float, *, nperseg: int | None = None,
                bands: dict[str, tuple[float, float]] = BANDS) -> np.ndarray:
    """Band powers of `x` (shape `(..., time)`) by Welch; `nperseg` defaults to 1 s.

    **Returns:** shape `(..., len(bands))` in units$^2$ (V$^2$ for EEG in volts).
    """
    nperseg = int(round(fs)) if nperseg is None else nperseg
    freqs, psd = welch_psd(x, fs, nperseg=nperseg)
    return integrate_bands(freqs, psd, bands)


def window_starts(n: int, fs: float, *, window_s: float, step_s: float) -> np.ndarray:
    """Start samples of the sliding windows that fit in `n` samples."""
    win, step = int(round(window_s * fs)), int(round(step_s * fs))
    if win < 2 or step < 1:
        raise ValueError(f"window_s={window_s} and step_s={step_s} are too short at {fs:g} Hz.")
    if n < win:
        raise ValueError(f"The recording ({n / fs:.2f} s) is shorter than one analysis "
                         f"window ({window_s:g} s).")
    return np.arange(0, n - win + 1, step)


def sliding_band_powers(
    data: np.ndarray, fs: float, *, window_s: float = 2.0, step_s: float = 0.5,
    nperseg: int | None = None, bands: dict[str, tuple[float, float]] = BANDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Band powers in sliding windows (each window's powers by Welch).

    **Arguments:**

    - `data`: samples, shape `(channels, time)`.
    - `fs`: sampling rate in Hz.
    - `window_s`, `step_s`: window length and hop in seconds (defaults 2 s and 0.5 s).
    - `nperseg`: Welch segment in samples (default 1 s: 1 Hz resolution, 3 segments per
        2 s window).

    **Returns:** `(times, powers)`: window end times in seconds `(windows,)` (the time the
    value becomes available causally) and powers `(windows, channels, bands)`.
    """
    data = np.asarray(data, dtype=np.float64)
    win = int(round(window_s * fs))
    starts = window_starts(data.shape[-1], fs, window_s=window_s, step_s=step_s)
    windows = data[:, starts[:, None] + np.arange(win)[None, :]]   # (ch, windows, win)
    powers = band_powers(windows, fs, nperseg=nperseg, bands=bands)
    return (starts + win) / fs, np.moveaxis(powers, 0, 1)
