"""Rhythm readouts, the shipped human data, and n:m mode locking, against hand-made cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax.data as published
from nrtjax.analysis import (
    asynchronies,
    iti_drift,
    mean_asynchrony,
    metronome_onsets,
    sliding_plv,
    stimulus_plv,
    tap_times,
    time_to_entrain,
)
from nrtjax.analysis import modelocking


def test_tap_times_are_peaks_of_real_part():
    fs, f, lag = 500.0, 2.3, 0.0371
    t = np.arange(0, 5.0, 1 / fs)
    z = 0.8 * np.exp(2j * np.pi * f * (t - lag))
    taps = tap_times(t, z)
    want = lag + np.arange(0, 12) / f
    want = want[(want > t[0]) & (want < t[-1])]
    np.testing.assert_allclose(taps, want, atol=2e-5)
    # negative-valued wiggles are not taps
    assert tap_times(t, -0.1 + 0.01 * np.exp(2j * np.pi * 7 * t)).size == 0
    with pytest.raises((ValueError, TypeError)):
        tap_times(t, np.stack([z, z]))


def test_asynchronies_nearest_onset_and_mean():
    onsets = metronome_onsets(0.5, 3.0)
    np.testing.assert_allclose(onsets, [0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    taps = np.array([0.49, 1.02, 1.74, 2.26])
    np.testing.assert_allclose(asynchronies(taps, onsets), [-0.01, 0.02, 0.24, -0.24], atol=1e-12)
    assert mean_asynchrony(taps, onsets, t_min=1.0) == pytest.approx((0.02 + 0.24 - 0.24) / 3)
    assert np.isnan(mean_asynchrony(taps, onsets, t_min=10.0))
    with pytest.raises(ValueError, match="period"):
        metronome_onsets(0.0, 1.0)


def test_iti_drift_recovers_a_linear_trend():
    iti = 0.5 + 0.002 * np.arange(40)
    taps = np.concatenate([[0.0], np.cumsum(iti)])
    assert iti_drift(taps) == pytest.approx(0.002, rel=1e-10)
    bent = np.concatenate([iti[:10], iti[10:] + 0.05 * np.arange(30)])
    assert iti_drift(np.concatenate([[0.0], np.cumsum(bent)]), max_intervals=10) == pytest.approx(0.002)
    assert np.isnan(iti_drift([0.0, 0.5, 1.0]))


def test_sliding_plv_matches_a_loop():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-np.pi, np.pi, (2, 3, 50))
    width = 7
    got = np.asarray(sliding_plv(a, b, width))
    want = np.stack([[abs(np.mean(np.exp(1j * (a[k, i:i + width] - b[k, i:i + width]))))
                      for i in range(50 - width + 1)] for k in range(3)])
    np.testing.assert_allclose(got, want, atol=1e-12)
    with pytest.raises(ValueError, match="window"):
        sliding_plv(a, b, 51)


def test_time_to_entrain():
    fs = 100.0
    ts = np.arange(0, 10.0, 1 / fs)
    stim = 2 * np.pi * 2.0 * ts
    rng = np.random.default_rng(1)
    locked_from = 4.0
    resp = np.where(ts >= locked_from, stim + 0.3, rng.uniform(-np.pi, np.pi, ts.size))
    t_e = float(time_to_entrain(ts, resp, stim, window=0.5, threshold=0.95))
    # certified at the end of the first all-locked window (a few random samples may pass)
    assert locked_from + 0.5 - 0.1 <= t_e <= locked_from + 0.5 + 1e-9
    never = np.asarray(time_to_entrain(ts, rng.uniform(-np.pi, np.pi, (2, ts.size)), stim,
                                       window=0.5))
    assert np.all(np.isinf(never))
    jitted = jax.jit(lambda p: time_to_entrain(jnp.asarray(ts), p, jnp.asarray(stim), window=0.5,
                                               threshold=0.95, dt=1 / fs))
    assert float(jitted(jnp.asarray(resp))) == pytest.approx(t_e)


def test_stimulus_plv():
    t = np.linspace(0, 10, 1000)
    x = np.exp(2j * np.pi * 1.5 * t)
    assert float(stimulus_plv(0.3 * x * np.exp(0.7j), x)) == pytest.approx(1.0)
    other = np.exp(2j * np.pi * 2.1 * t)
    assert float(stimulus_plv(other, x)) < 0.1


def test_published_data_files():
    asy = published.scheurich2018_asynchrony()
    np.testing.assert_allclose(asy["period_ratio"], [0.70, 0.85, 1.15, 1.30])
    np.testing.assert_allclose(asy["mean_async_ms"], [10.5, 7.5, -3.5, -6.5])
    assert "Scheurich" in asy["citation"] and "Front. Psychol." in asy["citation"]
    assert published.scheurich2018_smt("musician").shape == (20,)
    assert published.scheurich2018_smt("nonmusician").shape == (20,)
    rates = published.zamm2018_rates()
    assert rates["spr_ms"].shape == (24,)
    assert np.all(rates["faster_ms"] < rates["spr_ms"]) and np.all(rates["slower_ms"] > rates["spr_ms"])
    assert list(published.zamm2018_drift()["condition"]) == ["faster", "fast", "slow", "slower"]
    helm = published.consonance_ranking("helmholtz")
    assert helm["rank"].shape == (13,) and helm["abbrev"][1] == "P8"
    assert np.isnan(helm["delta_omega"][-1])
    bones = published.consonance_ranking("bones2015")
    assert set(bones["abbrev"]) <= set(helm["abbrev"])
    with pytest.raises(ValueError, match="Unknown data file"):
        published.load("nope.csv")
    with pytest.raises(ValueError, match="group"):
        published.scheurich2018_smt("drummers")


def test_resonance_order_and_strength():
    np.testing.assert_array_equal(modelocking.resonance_order([2, 3, 6, 45], [1, 2, 4, 32]),
                                  [1, 3, 3, 75])
    np.testing.assert_allclose(modelocking.resonance_strength([3], [2], 0.25, 0.5), [0.25**1.5 * 0.125])


def test_grids():
    g = modelocking.detuning_grid(0.1, 4, 1e-3)
    assert g.size == 9 and g[4] == 0 and np.all(np.diff(g) > 0)
    w = modelocking.cell_widths(np.array([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(w, [0.5, 1.5, 1.0])
    slip = np.array([[0.1, 0.2, 3.0], [1.0, 0.4, 0.49]])
    np.testing.assert_allclose(modelocking.locking_widths(slip, np.array([0.0, 1.0, 3.0])), [2.0, 2.5])


def test_mode_locking_octave_locks_and_unrelated_ratio_does_not():
    det = np.array([-0.01, 0.0, 0.01])
    plv, slip = modelocking.mode_locking([2, 45], [1, 32], det, amplitude=0.3, eps=1.0,
                                         beta2=-1.0, duration=24.0, fs=32.0, chunk=12.0)
    assert np.all(np.abs(slip[0]) < 0.5) and np.all(plv[0] > 0.9)     # 2:1 locked
    assert np.all(np.abs(slip[1]) > 0.5)                               # 45:32 slips
    with pytest.raises(ValueError, match="sqrt"):
        modelocking.mode_locking([2], [1], det, amplitude=2.0, eps=1.0)
