"""Band powers against scipy's Welch and against known spectra."""

import numpy as np
import pytest
import scipy.signal

from nrtjax.eeg import bands


def _scipy_band(x, fs, nperseg, lo, hi):
    # Independent reference: scipy.signal.welch (Hann, 50% overlap, density), summed over
    # the bins in [lo, hi) times the bin width.
    f, p = scipy.signal.welch(x, fs=fs, nperseg=nperseg, axis=-1)
    sel = (f >= lo) & (f < hi)
    return p[..., sel].sum(-1) * (f[1] - f[0])


@pytest.mark.parametrize("fs,nperseg", [(128.0, 128), (256.0, 256), (200.0, 100), (128.0, 127)])
def test_psd_matches_scipy_welch(fs, nperseg):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, int(4 * fs)))
    f, p = bands.welch_psd(x, fs, nperseg=nperseg)
    fr, pr = scipy.signal.welch(x, fs=fs, nperseg=nperseg, axis=-1)
    np.testing.assert_allclose(f, fr)
    np.testing.assert_allclose(p, pr, rtol=1e-10, atol=0)
    got = bands.band_powers(x, fs, nperseg=nperseg)
    for j, (lo, hi) in enumerate(bands.BANDS.values()):
        np.testing.assert_allclose(got[:, j], _scipy_band(x, fs, nperseg, lo, hi), rtol=1e-10)


@pytest.mark.parametrize("freq,band", [(2.0, "delta"), (6.0, "theta"), (10.0, "alpha"),
                                       (21.0, "beta"), (37.0, "gamma")])
def test_sine_power_lands_in_its_band(freq, band):
    # A sinusoid of amplitude A has power A^2 / 2, all of it in the band holding f.
    fs, amp = 128.0, 20e-6
    t = np.arange(int(8 * fs)) / fs
    x = amp * np.sin(2 * np.pi * freq * t + 0.3)
    p = bands.band_powers(x, fs)
    names = list(bands.BANDS)
    j = names.index(band)
    assert p[j] == pytest.approx(amp**2 / 2, rel=1e-3)
    others = [p[i] for i, n in enumerate(names) if n != band and not
              (band == "beta" and n == "high_beta")]
    assert max(others) < 1e-3 * amp**2


def test_white_noise_power_is_proportional_to_bandwidth():
    # White noise of variance s^2 has a flat one-sided density 2 s^2 / fs.
    fs, s = 128.0, 10e-6
    x = s * np.random.default_rng(1).standard_normal(int(600 * fs))
    p = bands.band_powers(x, fs)
    for j, (lo, hi) in enumerate(bands.BANDS.values()):
        assert p[j] == pytest.approx(2 * s**2 / fs * (hi - lo), rel=0.03)


def test_sliding_windows_match_per_window_computation():
    fs = 128.0
    x = np.random.default_rng(2).standard_normal((2, int(10 * fs)))
    times, p = bands.sliding_band_powers(x, fs, window_s=2.0, step_s=0.5)
    assert p.shape == (len(times), 2, len(bands.BANDS))
    np.testing.assert_allclose(times, np.arange(2.0, 10.0 + 1e-9, 0.5))
    k = 5
    a = int((times[k] - 2.0) * fs)
    ref = _scipy_band(x[:, a:a + 256], fs, 128, 8.0, 13.0)
    np.testing.assert_allclose(p[k, :, 2], ref, rtol=1e-10)


def test_too_short_input_is_a_clear_error():
    with pytest.raises(ValueError, match="shorter than one analysis window"):
        bands.sliding_band_powers(np.zeros((1, 100)), 128.0, window_s=2.0)
    with pytest.raises(ValueError, match="nperseg"):
        bands.welch_psd(np.zeros(10), 128.0, nperseg=128)
