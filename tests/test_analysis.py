import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.analysis import (
    instantaneous_frequency,
    instantaneous_phase,
    peak_times,
    phase_crossings,
    resonance_peak,
)


def test_plv_reference_cases():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 10, 5000)
    a = 2 * np.pi * 1.5 * t + rng.normal(0, 0.01, t.size)
    assert float(nrt.plv(a, a)) == pytest.approx(1.0)
    assert float(nrt.plv(a, a - 1.234)) == pytest.approx(1.0)
    T = 20000
    x, y = rng.uniform(-np.pi, np.pi, (2, 50, T))
    vals = np.asarray(nrt.plv(x, y))
    assert vals.shape == (50,)
    assert abs(vals.mean() - np.sqrt(np.pi / (4 * T))) < 3 / np.sqrt(T)  # Rayleigh mean
    # 2:1 locking.
    assert float(nrt.plv(2 * np.pi * 1.0 * t, 2 * np.pi * 2.0 * t, n=2, m=1)) == pytest.approx(1.0)
    assert float(nrt.plv(2 * np.pi * 1.0 * t, 2 * np.pi * 2.0 * t)) < 0.05


def test_instantaneous_phase_and_frequency():
    fs = 1000.0
    t = np.arange(0, 4, 1 / fs)
    chirp = 2 * np.pi * (2 * t + 0.5 * t**2)  # f(t) = 2 + t
    f = np.asarray(instantaneous_frequency(instantaneous_phase(np.exp(1j * chirp)), 1 / fs))
    np.testing.assert_allclose(f[1:-1], 2 + t[1:-1], atol=1e-6)
    real = np.asarray(instantaneous_phase(np.cos(2 * np.pi * 5 * t)))
    mid = slice(500, 3500)
    np.testing.assert_allclose(np.cos(real[mid]), np.cos(2 * np.pi * 5 * t[mid]), atol=1e-3)


def test_resonance_peak_and_event_times():
    f = np.geomspace(0.5, 8, 61)
    amp = np.exp(-((np.log(f) - np.log(2.13)) ** 2) / 0.05)
    assert float(resonance_peak(f, amp)) == pytest.approx(2.13, rel=2e-3)
    assert float(resonance_peak(f, amp[::-1] * 0 + np.linspace(0, 1, 61))) == pytest.approx(8.0)
    ts = np.arange(0, 5, 0.01)
    ph = 2 * np.pi * 1.5 * ts - 0.3
    want = (np.arange(0, 8) * 2 * np.pi + 0.3) / (2 * np.pi * 1.5)
    np.testing.assert_allclose(phase_crossings(ts, np.angle(np.exp(1j * ph))), want, atol=1e-9)
    np.testing.assert_allclose(peak_times(ts, np.cos(ph)), want, atol=2e-5)
