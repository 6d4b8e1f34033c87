"""Surrogate metrics against hand-computed values and NumPy references."""

import numpy as np
import pytest

from nrtjax.surrogate import (SurrogateOutput, freq_mae, pearson_r, plv_retention,
                              surrogate_metrics, tracking_plv)


def test_identical_and_lagged_phases_give_plv_one():
    phi = np.linspace(0, 40 * np.pi, 5000)
    assert float(tracking_plv(phi, phi)) == pytest.approx(1.0, abs=1e-12)
    assert float(tracking_plv(phi + 1.3, phi)) == pytest.approx(1.0, abs=1e-12)


def test_independent_phases_give_about_one_over_sqrt_t():
    rng = np.random.default_rng(0)
    t = 10_000
    a = rng.uniform(-np.pi, np.pi, (200, t))
    b = rng.uniform(-np.pi, np.pi, (200, t))
    p = np.asarray(tracking_plv(a, b))
    # |mean of T random unit vectors| is Rayleigh-distributed: mean sqrt(pi / (4 T)).
    assert p.mean() == pytest.approx(np.sqrt(np.pi / (4 * t)), rel=0.1)


def test_plv_retention_hand_computed():
    stim = np.zeros(4)
    gt = np.array([0, 0, np.pi / 2, np.pi / 2])      # |(1 + 1 + i + i)/4| = sqrt(2)/2
    pred = np.array([0, 0, 0, np.pi / 2])            # |(3 + i)/4| = sqrt(10)/4
    expected = (np.sqrt(10) / 4) / (np.sqrt(2) / 2)
    assert float(plv_retention(pred, gt, stim)) == pytest.approx(expected, rel=1e-12)
    assert float(plv_retention(gt, gt, stim)) == pytest.approx(1.0, rel=1e-12)


def test_freq_mae_and_pooled_pearson():
    assert float(freq_mae(np.array([1.0, 2.0, 3.0]), np.ones(3))) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 50)), rng.normal(size=(3, 50))
    b = b + a
    assert float(pearson_r(a, b)) == pytest.approx(np.corrcoef(a.ravel(), b.ravel())[0, 1], rel=1e-10)


def test_surrogate_metrics_skip_startup():
    fs, n = 10.0, 200
    t = np.arange(n) / fs
    phase = np.angle(np.exp(2j * np.pi * 2.0 * t))[None]
    freq = (2.0 + 0.1 * np.sin(t))[None]
    amp = (1.0 + 0.05 * np.cos(t))[None]
    truth = SurrogateOutput(phase, freq, amp)
    bad = np.where(t < 5.0, 0.0, 1.0)[None]  # wrong only during the 5 s start-up
    pred = SurrogateOutput(phase * bad, freq * bad + (1 - bad), amp * bad + (1 - bad) * 3)
    m = surrogate_metrics(pred, truth, phase, fs=fs, startup=5.0)
    assert m["tracking_plv_mean"] == pytest.approx(1.0, abs=1e-12)
    assert m["plv_retention_mean"] == pytest.approx(1.0, abs=1e-12)
    assert m["freq_mae_hz_mean"] == pytest.approx(0.0, abs=1e-12)
    assert m["freq_r"] == pytest.approx(1.0, abs=1e-12)
    m0 = surrogate_metrics(pred, truth, phase, fs=fs, startup=0.0)
    assert m0["freq_mae_hz_mean"] > 0.1
