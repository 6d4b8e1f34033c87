"""Smooth tapping readouts vs peak picking, and their gradients vs finite differences."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.fitting import losses, readouts

from ._ashle_numpy import peak_taps

FS = 500.0
ONE_SAMPLE = 1.0 / FS


@pytest.fixture(scope="module")
def paced():
    model = nrt.ASHLE(f0=2.0, lambda1=3.0, lambda2=1.5)
    period = jnp.asarray(0.42)
    ts, ys, x = losses.simulate_trial(model, period, duration=20.0, fs=FS)
    return ts, ys, x, period


def test_unwrapped_phase_matches_numpy_unwrap(paced):
    ts, ys, _, _ = paced
    ref = np.unwrap(np.angle(np.asarray(ys.z)))
    np.testing.assert_allclose(readouts.unwrapped_phase(ys.z), ref, atol=1e-9)


def test_tap_times_agree_with_peak_picking(paced):
    ts, ys, _, _ = paced
    peaks = peak_taps(np.asarray(ts), np.real(np.asarray(ys.z)))
    peaks = peaks[(peaks > 3.0) & (peaks < 19.5)]
    phase = readouts.unwrapped_phase(ys.z)
    k = np.round(np.interp(peaks, ts, phase) / (2 * np.pi)).astype(int)
    smooth = np.asarray(readouts.tap_times(ts, phase, jnp.asarray(k)))
    assert peaks.size > 30
    assert np.max(np.abs(smooth - peaks)) < ONE_SAMPLE
    np.testing.assert_allclose(readouts.nearest_tap(ts, phase, jnp.asarray(peaks + 0.03)), smooth)


def test_asynchrony_agrees_with_peak_picking(paced):
    ts, ys, x, period = paced
    peaks = peak_taps(np.asarray(ts), np.real(np.asarray(ys.z)))
    peaks = peaks[peaks > 10.0]
    p = float(period)
    beat_lag = peaks - p * np.round(peaks / p)
    smooth = float(readouts.asynchrony(ts, ys.z, x, period, window=10.0))
    assert abs(np.mean(beat_lag)) > 0.005  # a real, non-trivial asynchrony
    assert abs(smooth - np.mean(beat_lag)) < ONE_SAMPLE


def test_ioi_drift_agrees_with_peak_picking():
    # 8 s of metronome faster than the SMT, then continuation: the tempo drifts back.
    # gamma raised from 0.02 so that the sensory oscillator lets go within the run.
    model = nrt.ASHLE(f0=2.0, lambda1=4.0, lambda2=2.0, gamma=1.0)
    t = np.arange(int(20 * FS) + 1) / FS
    x = np.where(t < 8.0, np.exp(2j * np.pi * t / 0.4), 0.0)
    traj = nrt.simulate(model, nrt.Signal(t, x), dt=1 / FS, solver=diffrax.Euler())
    phase = readouts.unwrapped_phase(traj.ys.z)
    peaks = peak_taps(t, np.real(np.asarray(traj.ys.z)))
    peaks = peaks[peaks > 9.0]
    iois, mids = np.diff(peaks), 0.5 * (peaks[1:] + peaks[:-1])
    smooth = np.asarray(readouts.motor_ioi(traj.ts, phase, jnp.asarray(mids)))
    assert iois[-1] - iois[0] > 0.03  # the drift is real
    assert np.max(np.abs(smooth - iois)) < ONE_SAMPLE
    drift = float(readouts.ioi_drift(traj.ts, phase, start=float(mids[0]), stop=float(mids[-1])))
    assert abs(drift - (iois[-1] - iois[0])) < ONE_SAMPLE


def _fd_check(fn, x0, h=1e-4, rtol=2e-3):
    g = jax.grad(fn)(x0)
    fd = (fn(x0 + h) - fn(x0 - h)) / (2 * h)
    assert jnp.isfinite(g)
    assert abs(float(g) - float(fd)) <= rtol * abs(float(fd)) + 1e-8


@pytest.mark.parametrize("readout", ["tap", "asynchrony", "ioi"])
def test_readout_gradients_match_finite_differences(readout):
    period = jnp.asarray(0.45)

    def fn(lambda1):
        model = nrt.ASHLE(f0=2.0, lambda1=lambda1, lambda2=2.0)
        ts, ys, x = losses.simulate_trial(model, period, duration=8.0, fs=FS)
        phase = readouts.unwrapped_phase(ys.z)
        if readout == "tap":
            return jnp.sum(readouts.tap_times(ts, phase, jnp.arange(8, 15)))
        if readout == "asynchrony":
            return readouts.asynchrony(ts, ys.z, x, period, window=3.0)
        return readouts.motor_ioi(ts, phase, jnp.asarray([2.0, 5.0, 7.5])).sum()

    _fd_check(jax.jit(fn), jnp.asarray(3.0))
