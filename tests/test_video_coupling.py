"""The drummer's forcing, the motion phase and the register, against closed forms."""

import numpy as np
import pytest

import nrtjax as nrt
import nrtjax.video as nv

FS = 100.0


def _grid(duration=10.0):
    return np.arange(int(duration * FS) + 1) / FS


def test_forcing_carries_the_motion_phase():
    ts = _grid()
    f = 1.6
    energy = 1.0 + 0.5 * np.cos(2 * np.pi * f * ts)
    mf = nv.motion_forcing(ts, energy)
    F = np.asarray(mf.signal.xs)
    half = ts.size // 2
    # Locked to the input: constant phase lag against 2 pi f t, full strength.
    assert float(nrt.plv(np.angle(F[half:]), 2 * np.pi * f * ts[half:])) > 0.99
    assert np.abs(F[half:]).min() > 0.99
    assert mf.peak_hz == pytest.approx(f, rel=0.05)
    assert mf.salience > 0.99 and mf.peakiness > 3 and nv.has_beat(mf)


def test_constant_motion_gives_no_beat():
    ts = _grid()
    rng = np.random.default_rng(0)
    energy = 0.06 * (1 + 0.005 * rng.standard_normal(ts.size))  # a drifting grating's level
    mf = nv.motion_forcing(ts, energy)
    assert mf.salience == 0.0 and not nv.has_beat(mf)
    np.testing.assert_array_equal(np.asarray(mf.signal.xs), 0)  # below the floor: silent


def test_bank_at_rest_without_motion_change():
    ts = _grid(2.0)
    mf = nv.motion_forcing(ts, np.full(ts.size, 0.3))
    np.testing.assert_array_equal(np.asarray(mf.signal.xs), 0)
    with pytest.raises(ValueError, match="does not move"):
        nv.motion_forcing(ts, np.zeros(ts.size))


def test_motion_phase_of_a_sinusoid():
    fps, f = 30.0, 1.7
    t = np.arange(1, 301) / fps
    phase, peak = nv.motion_phase(t, 2 + np.cos(2 * np.pi * f * t + 0.4), fps)
    assert peak == pytest.approx(f, abs=0.02)
    inner = slice(60, -60)  # away from the edges (filter and Hilbert transform)
    err = np.angle(np.exp(1j * (phase - 2 * np.pi * f * t - 0.4)))[inner]
    assert np.max(np.abs(err)) < 0.05


def test_register_mapping():
    reg = np.asarray(nv.register_from_position(np.array([0.0, 0.5, 1.0, 1.3]), low=48, high=84))
    np.testing.assert_allclose(reg, [48, 66, 84, 84])
    with pytest.raises(ValueError, match="high > low"):
        nv.register_from_position(np.zeros(3), low=60, high=50)


def test_broadband_motion_is_not_a_beat():
    # Strong but aperiodic modulation (random bursts, like scene cuts): the bank responds
    # (high salience) but no single resonance dominates its profile.
    ts = _grid()
    rng = np.random.default_rng(1)
    bursts = np.zeros(ts.size)
    bursts[rng.choice(ts.size, 12, replace=False)] = 1.0
    energy = 1.0 + np.convolve(bursts, np.exp(-np.arange(0, 0.3, 1 / FS) / 0.05), "same")
    mf = nv.motion_forcing(ts, energy)
    assert mf.salience > 0.5
    assert mf.peakiness < 2.0 and not nv.has_beat(mf)
