"""The references of the surrogate's frequency and phase heads: the forcing's causal
frequency estimate, ASHLE's locked motor frequency and its steady lag, against
independent references."""

import json

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.surrogate import TCN, Surrogate
from nrtjax.surrogate.tcn import forcing_frequency, locked_frequency, locked_lag

FS = 256.0


def _phasor(freqs_hz, *, start=1.0, fade=1.0):
    """x = (Re, Im) of a phasor with instantaneous frequency `freqs_hz` (per sample), zero
    before `start` s and faded in linearly over `fade` s."""
    phase = 2 * np.pi * np.cumsum(freqs_hz) / FS
    t = np.arange(freqs_hz.size) / FS
    gain = np.clip((t - start) / fade, 0.0, 1.0)
    return np.stack([gain * np.cos(phase), gain * np.sin(phase)]), t


def _ema_loop(x, decay):
    out, y = np.empty_like(x), np.zeros(x.shape[0])
    for k in range(x.shape[1]):
        y = decay * y + (1 - decay) * x[:, k]
        out[:, k] = y
    return out


def test_forcing_frequency_of_a_phasor_settles_on_its_frequency():
    f = np.full(12 * 256, 2.3)
    f[6 * 256:] = 2.95  # a step beyond the training tempi
    x, t = _phasor(f)
    est = np.asarray(forcing_frequency(jnp.asarray(x), fs=FS, tau=0.5, prior=1.8))
    assert np.all(est[t < 1.0] == 1.8)  # no forcing yet: the prior
    np.testing.assert_allclose(est[(t > 5.0) & (t < 6.0)], 2.3, rtol=1e-9)
    np.testing.assert_allclose(est[t > 11.0], 2.95, rtol=2e-5)  # e^(-10) of the step left
    # In between it is the |F|^2-weighted mean phase increment over ~tau (NumPy loop).
    re, im = x
    re0, im0 = np.r_[0.0, re[:-1]], np.r_[0.0, im[:-1]]
    inc = np.stack([re * re0 + im * im0, im * re0 - re * im0, np.hypot(re, im) * np.hypot(re0, im0)])
    p_re, p_im, a = _ema_loop(inc, np.exp(-1.0 / (0.5 * FS)))
    ref = 1.8 + np.clip(a * 1e3, 0, 1) * (np.arctan2(p_im, p_re) * FS / (2 * np.pi) - 1.8)
    np.testing.assert_allclose(est, ref, rtol=1e-9, atol=1e-9)
    i = np.searchsorted(t, 6.5)  # half a second after the step: between the two
    assert 2.3 < est[i] < 2.95


def test_forcing_frequency_is_causal(getkey):
    x = jr.normal(getkey(), (2, 400))
    y = x.at[:, 250:].set(jr.normal(getkey(), (2, 150)))
    a, b = (np.asarray(forcing_frequency(v, fs=FS, tau=0.3, prior=2.0)) for v in (x, y))
    np.testing.assert_array_equal(a[:250], b[:250])
    assert not np.allclose(a[250:], b[250:])


def _motor_steady(f_forcing, *, f0, lam1, lam2, seconds=20.0, fs=128.0):
    """ASHLE's motor oscillator z and frequency f (Roman et al. 2023, a = 1, b = -1) driven
    by the unit phasor u = exp(i 2 pi f_F t), classical RK4 in NumPy; over the last 5 s, the
    mean f and the mean lag of z behind u, arg <u conj(z)> (20 s at 128 Hz agree with 60 s
    at 256 Hz to 1e-5 Hz)."""
    def vf(t, y):
        z, f = y
        u = np.exp(2j * np.pi * f_forcing * t)
        uz = z / abs(z)
        return np.array([f * (z * (1 + 2j * np.pi - abs(z) ** 2) + u),
                         f * (-lam1 * np.real(1j * u * np.conj(uz))
                              - lam2 * (np.exp((f.real - f0) / f0) - 1))])
    h, y, fs_, lag = 1.0 / fs, np.array([0.5 + 0j, f_forcing + 0j]), [], 0j
    n = int(seconds * fs)
    for k in range(n):
        t = k * h
        k1 = vf(t, y)
        k2 = vf(t + h / 2, y + h / 2 * k1)
        k3 = vf(t + h / 2, y + h / 2 * k2)
        k4 = vf(t + h, y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if k >= n - 5 * fs:
            fs_.append(y[1].real)
            lag += np.exp(2j * np.pi * f_forcing * (t + h)) * np.conj(y[0]) / abs(y[0])
    return float(np.mean(fs_)), float(np.angle(lag))


@pytest.mark.parametrize("f_forcing", [1.2, 2.4, 2.95])
def test_locked_frequency_and_lag_match_simulated_ashle_steady_state(f_forcing):
    want_f, want_lag = _motor_steady(f_forcing, f0=1.8, lam1=1.0, lam2=1.0)
    got = locked_frequency(jnp.asarray(f_forcing), f0=1.8, elasticity=1.0)
    assert float(got) == pytest.approx(want_f, abs=2e-3)
    if f_forcing > 1.8:
        assert float(got) < f_forcing  # the elasticity holds f below a faster forcing
    cos, sin = locked_lag(got, f0=1.8, elasticity=1.0)
    assert float(cos) ** 2 + float(sin) ** 2 == pytest.approx(1.0, abs=1e-12)
    assert float(jnp.arctan2(sin, cos)) == pytest.approx(want_lag, abs=5e-3)
    assert np.sign(want_lag) == np.sign(f_forcing - 1.8)  # z trails a faster forcing


def test_locked_frequency_fixed_point_and_monotone():
    assert float(locked_frequency(jnp.asarray(1.8), f0=1.8, elasticity=1.0)) == pytest.approx(1.8, abs=1e-4)
    f = np.asarray(locked_frequency(jnp.linspace(0.8, 3.4, 200), f0=1.8, elasticity=1.0))
    assert np.all(np.diff(f) > 0)


def _small(key, **kw):
    return Surrogate(TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16, key=key),
                     freq_tau=0.3, **kw)


def test_residual_head_is_reference_plus_offset_and_causal(getkey):
    model = _small(getkey())
    x, _ = _phasor(np.full(600, 2.6), start=0.2, fade=0.3)
    x = jnp.asarray(x)
    # With the head's frequency row zeroed the output is exactly the reference.
    zero = eqx.tree_at(lambda m: (m.net.head.weight, m.net.head.bias), model,
                       (model.head.weight.at[2].set(0.0), model.head.bias.at[2].set(0.0)))
    ref = locked_frequency(forcing_frequency(x, fs=FS, tau=0.3, prior=1.8), f0=1.8,
                           elasticity=1.0)
    freq = zero.freq_center + zero.freq_scale * zero(x)[2]
    np.testing.assert_allclose(np.asarray(freq), np.asarray(ref), rtol=1e-10)
    y = x.at[:, 400:].set(jr.normal(getkey(), (2, 200)))
    np.testing.assert_array_equal(np.asarray(model(x)[:, :400]), np.asarray(model(y)[:, :400]))


def test_phase_residual_is_forcing_phase_minus_locked_lag_and_causal(getkey):
    model = _small(getkey())
    x, t = _phasor(np.full(600, 2.6), start=0.5, fade=0.5)
    x = jnp.asarray(x)
    # With the head's phase rows zeroed the output phasor is the reference: the forcing
    # phase less the steady lag psi, sin psi = (e^{(f - f0)/f0} - 1), f the locked frequency
    # of the reference (written out here in NumPy), of magnitude min(|F| / 0.1, 1).
    zero = eqx.tree_at(lambda m: (m.net.head.weight, m.net.head.bias), model,
                       (model.head.weight.at[:2].set(0.0), model.head.bias.at[:2].set(0.0)))
    out = np.asarray(zero(x))
    f_lock = np.asarray(locked_frequency(forcing_frequency(x, fs=FS, tau=0.3, prior=1.8),
                                         f0=1.8, elasticity=1.0))
    psi = np.arcsin(np.expm1((f_lock - 1.8) / 1.8))
    forcing = np.asarray(x[0] + 1j * x[1])
    want = np.abs(forcing) / np.maximum(np.abs(forcing), 0.1) * np.exp(1j * (np.angle(forcing) - psi))
    np.testing.assert_allclose(out[0] + 1j * out[1], want, atol=1e-12)
    assert np.all(out[:2, t < 0.5] == 0.0)  # no forcing yet: the head's (zero) output as is
    # The amplitude row is the network's own.
    np.testing.assert_array_equal(out[3], np.asarray(zero.net(zero.invariant_channels(x))[3]))
    y = x.at[:, 400:].set(jr.normal(getkey(), (2, 200)))
    np.testing.assert_array_equal(np.asarray(model(x)[:, :400]), np.asarray(model(y)[:, :400]))


def test_tempo_clip_inputs_are_tempo_invariant_and_causal(getkey):
    model = _small(getkey(), tempo_clip=(75.0, 170.0))
    settled = slice(int(2.5 * FS), None)
    chans = {}
    for hz in (3.0, 3.3, 2.0):
        x, t = _phasor(np.full(900, hz), start=0.2, fade=0.3)
        chans[hz] = np.asarray(model.invariant_channels(jnp.asarray(x)))
        # presence 0 before the forcing and 1 once |F| >= 0.1; no frequency deviation on a
        # steady phasor once the estimate has settled
        assert np.all(chans[hz][0, t < 0.2] == 0.0) and np.all(chans[hz][0, settled] == 1.0)
        np.testing.assert_allclose(chans[hz][1, settled], 0.0, atol=1e-9)
    # Above the clip (170 BPM = 2.83 Hz) two tempi look alike to the network: the clipped
    # reference is ASHLE's locked frequency at 2.83 Hz for both.
    want = (float(locked_frequency(jnp.asarray(170.0 / 60), f0=1.8, elasticity=1.0)) - 2.0) / 0.5
    for hz in (3.0, 3.3):
        np.testing.assert_allclose(chans[hz][2, settled], want, rtol=1e-9)
    assert abs(chans[2.0][2, -1] - want) > 0.3  # inside the range it follows the tempo
    x = jnp.asarray(_phasor(np.full(600, 3.1), start=0.2, fade=0.3)[0])
    y = x.at[:, 400:].set(jr.normal(getkey(), (2, 200)))
    np.testing.assert_array_equal(np.asarray(model(x)[:, :400]), np.asarray(model(y)[:, :400]))
    with pytest.raises(ValueError, match="tempo_clip"):
        _small(getkey(), tempo_clip=(170.0, 75.0))
    with pytest.raises(ValueError, match="in_channels=2"):
        Surrogate(TCN(2, hidden=8, n_blocks=1, heads=0, key=getkey()))


def test_checkpoint_round_trip_and_older_files_refused(getkey, tmp_path):
    model = Surrogate(TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16, dropout=0.1,
                          dtype=jnp.float32, key=getkey()), freq_tau=0.5, lock_f0=2.0,
                      tempo_clip=(80.0, 160.0))
    path = nrt.surrogate.save_model(tmp_path / "s.eqx", model, dtype="float32")
    loaded = nrt.surrogate.load(path)
    assert eqx.tree_equal(loaded, model)
    x = jnp.asarray(_phasor(np.full(64, 2.0), start=0.0, fade=0.1)[0], jnp.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    # A file from before the modes were folded (its JSON names them) says what to do.
    hyper = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**hyper, "freq_residual": False}))
    with pytest.raises(ValueError, match="older nrtjax.*train_surrogate"):
        nrt.surrogate.load(path)


def test_predict_refuses_a_stimulus_at_another_rate(getkey):
    model = Surrogate(TCN(hidden=8, n_blocks=1, kernel=3, heads=2, window=8, key=getkey()))
    sig = nrt.Signal.sampled(jnp.exp(2j * jnp.pi * 2.0 * jnp.arange(256) / 128.0), 128.0)
    with pytest.raises(ValueError, match="256.0 Hz"):
        nrt.surrogate.predict(model, sig)
    ok = nrt.surrogate.predict(model, nrt.Signal.sampled(jnp.exp(2j * jnp.pi * 2.0 * jnp.arange(512) / 256.0), 256.0))
    assert ok.freq.shape == (512,)
