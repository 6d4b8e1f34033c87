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
from nrtjax.surrogate import TCN
from nrtjax.surrogate.tcn import forcing_frequency, locked_frequency, locked_lag, motor_phase

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


@pytest.mark.parametrize("lock_f0,channel", [(0.0, False), (1.8, True)])
def test_residual_head_is_reference_plus_offset_and_causal(getkey, lock_f0, channel):
    model = TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16, freq_residual=True,
                freq_channel=channel, freq_tau=0.3, lock_f0=lock_f0, key=getkey())
    assert model.proj.in_channels == 2 + channel
    x, _ = _phasor(np.full(600, 2.6), start=0.2, fade=0.3)
    x = jnp.asarray(x)
    # With the head's frequency row zeroed the output is exactly the reference.
    zero = eqx.tree_at(lambda m: (m.head.weight, m.head.bias), model,
                       (model.head.weight.at[2].set(0.0), model.head.bias.at[2].set(0.0)))
    ref = forcing_frequency(x, fs=FS, tau=0.3, prior=lock_f0 or 2.0)
    if lock_f0:
        ref = locked_frequency(ref, f0=lock_f0, elasticity=1.0)
    freq = zero.freq_center + zero.freq_scale * zero(x)[2]
    np.testing.assert_allclose(np.asarray(freq), np.asarray(ref), rtol=1e-10)
    y = x.at[:, 400:].set(jr.normal(getkey(), (2, 200)))
    np.testing.assert_array_equal(np.asarray(model(x)[:, :400]), np.asarray(model(y)[:, :400]))


def test_phase_residual_is_forcing_phase_minus_locked_lag_and_causal(getkey):
    key = getkey()
    def make(phase):
        return TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16,
                                 freq_residual=True, freq_tau=0.3, lock_f0=1.8,
                                 phase_residual=phase, key=key)
    model = make(True)
    x, t = _phasor(np.full(600, 2.6), start=0.5, fade=0.5)
    x = jnp.asarray(x)
    # With the head's phase rows zeroed the output phasor is the reference: the forcing
    # phase less the steady lag psi, sin psi = (e^{(f - f0)/f0} - 1), f the locked frequency
    # of the reference (written out here in NumPy), of magnitude min(|F| / 0.1, 1).
    zero = eqx.tree_at(lambda m: (m.head.weight, m.head.bias), model,
                       (model.head.weight.at[:2].set(0.0), model.head.bias.at[:2].set(0.0)))
    out = np.asarray(zero(x))
    f_lock = np.asarray(locked_frequency(forcing_frequency(x, fs=FS, tau=0.3, prior=1.8),
                                         f0=1.8, elasticity=1.0))
    psi = np.arcsin(np.expm1((f_lock - 1.8) / 1.8))
    forcing = np.asarray(x[0] + 1j * x[1])
    want = np.abs(forcing) / np.maximum(np.abs(forcing), 0.1) * np.exp(1j * (np.angle(forcing) - psi))
    np.testing.assert_allclose(out[0] + 1j * out[1], want, atol=1e-12)
    assert np.all(out[:2, t < 0.5] == 0.0)  # no forcing yet: the head's (zero) output as is
    # Frequency and amplitude rows are untouched by the phase reference.
    np.testing.assert_array_equal(out[2:], np.asarray(make(False)(x))[2:])
    y = x.at[:, 400:].set(jr.normal(getkey(), (2, 200)))
    np.testing.assert_array_equal(np.asarray(model(x)[:, :400]), np.asarray(model(y)[:, :400]))


def test_tempo_clip_inputs_are_tempo_invariant_and_causal(getkey):
    model = TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16, freq_residual=True,
                freq_tau=0.3, lock_f0=1.8, phase_residual=True, tempo_clip=(75.0, 170.0),
                key=getkey())
    assert model.proj.in_channels == 3
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
        TCN(hidden=8, n_blocks=1, freq_residual=True, tempo_clip=(75.0, 170.0), key=getkey())


def test_old_format_checkpoint_still_loads(getkey, tmp_path):
    model = TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16, dropout=0.0,
                dtype=jnp.float32, key=getkey())
    path = tmp_path / "old.eqx"
    eqx.tree_serialise_leaves(path, model)
    old_keys = {"in_channels": 2, "hidden": 8, "n_blocks": 2, "kernel": 3, "dropout": 0.0,
                "heads": 2, "window": 16, "freq_center": 2.0, "freq_scale": 0.5,
                "dtype": "float32"}
    path.with_suffix(".json").write_text(json.dumps(old_keys))
    loaded = nrt.surrogate.load(path)
    assert not (loaded.freq_residual or loaded.freq_channel or loaded.phase_residual)
    assert loaded.tempo_clip is None
    assert not loaded.phase_integrator and loaded.phase_coupling == 1.0
    x = jr.normal(getkey(), (2, 64), dtype=jnp.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    # A config of another architecture fails with a message naming the file.
    path.with_suffix(".json").write_text(json.dumps({**old_keys, "freq_channel": True}))
    with pytest.raises(ValueError, match="old.eqx"):
        nrt.surrogate.load(path)


def test_predict_refuses_a_stimulus_at_another_rate(getkey):
    model = TCN(hidden=8, n_blocks=1, kernel=3, heads=2, window=8, freq_residual=True,
                lock_f0=1.8, key=getkey())
    sig = nrt.Signal.sampled(jnp.exp(2j * jnp.pi * 2.0 * jnp.arange(256) / 128.0), 128.0)
    with pytest.raises(ValueError, match="256.0 Hz"):
        nrt.surrogate.predict(model, sig)
    ok = nrt.surrogate.predict(model, nrt.Signal.sampled(jnp.exp(2j * jnp.pi * 2.0 * jnp.arange(512) / 256.0), 256.0))
    assert ok.freq.shape == (512,)


def _motor_phase_loop(freq, amp, drive, dt, theta0=0.0):
    """Explicit Euler on theta' = f (2 pi + Im(D e^{-i theta}) / max(r, 0.05)), written out
    independently of the scan."""
    theta, out = theta0, np.empty(freq.size)
    for k in range(freq.size):
        out[k] = theta
        pull = np.imag(drive[k] * np.exp(-1j * theta))
        theta += dt * freq[k] * (2 * np.pi + pull / max(amp[k], 0.05))
    return out


def test_motor_phase_follows_ashle_motor_oscillator():
    # An independent NumPy ASHLE (Euler at 500 Hz, the reference setting; metronome at
    # 2.3 Hz from 1 s): its motor phase angle(z) is the integral of its own f and |z|
    # driven by exp(i angle d).
    fs, n, period = 500.0, 5000, 1 / 2.3
    d = z = 0.01 + 0j
    fd = f = 1.8
    ds, fz, zs = np.empty(n, complex), np.empty(n), np.empty(n, complex)
    for k in range(n):
        ds[k], fz[k], zs[k] = d, f, z
        t = k / fs
        F = np.exp(2j * np.pi * t / period) if t >= 1.0 else 0.0
        ud, uz = d / abs(d), z / abs(z)
        dd = fd * (d * (1 + 2j * np.pi - abs(d) ** 2) + F)
        dfd = fd * (-4.0 * np.real(1j * F * np.conj(ud)) - 0.02 * np.expm1((fd - f) / f))
        dz = f * (z * (1 + 2j * np.pi - abs(z) ** 2) + ud)
        df = f * (-4.0 * np.real(1j * ud * np.conj(uz)) - 2.0 * np.expm1((f - 1.8) / 1.8))
        d, fd, z, f = d + dd / fs, fd + dfd / fs, z + dz / fs, f + df / fs
    drive = ds / np.abs(ds)
    got = np.asarray(motor_phase(jnp.asarray(fz), jnp.asarray(np.abs(zs)),
                                 jnp.asarray(np.stack([drive.real, drive.imag])), fs=fs))
    np.testing.assert_allclose(got, _motor_phase_loop(fz, np.abs(zs), drive, 1 / fs), atol=1e-9)
    # Euler on z and Euler on its phase agree to O(dt) once |z| is above the 0.05 floor.
    settled = np.abs(zs) > 0.2
    assert settled[-1] and np.all(settled[np.argmax(settled):])
    err = np.angle(np.exp(1j * (got - np.angle(zs))))[settled]
    assert np.max(np.abs(err)) < 0.05


def test_motor_phase_locks_and_slips_at_the_analytic_rates():
    # Constant f, r and a metronome drive at f_F: with K = f / r and detuning
    # w = 2 pi (f - f_F), the phase relative to the drive obeys Adler's equation
    # (Adler 1946): locked at sin(psi) = -w / K behind the drive when |w| < K, else slipping
    # at the mean rate sqrt(w^2 - K^2) rad/s.
    fs, t = FS, np.arange(40 * 256) / FS
    def drive(f_F):
        return jnp.asarray(np.stack([np.cos(2 * np.pi * f_F * t),
                                                  np.sin(2 * np.pi * f_F * t)]))
    ones = jnp.ones(t.size)
    theta = np.asarray(motor_phase(2.0 * ones, 1.25 * ones, drive(2.1), fs=fs))
    lag = np.angle(np.exp(1j * (2 * np.pi * 2.1 * t - theta)))
    np.testing.assert_allclose(lag[-1], np.arcsin(2 * np.pi * 0.1 * 1.25 / 2.0), atol=2e-3)
    theta = np.asarray(motor_phase(1.2 * ones, 1.25 * ones, drive(2.2), fs=fs))
    rel = 2 * np.pi * 2.2 * t - theta
    w, k = 2 * np.pi * 1.0, 1.2 / 1.25
    cycles = np.flatnonzero(np.diff(np.floor(rel / (2 * np.pi))) > 0)
    np.testing.assert_allclose(np.mean(np.diff(cycles)) / fs, 2 * np.pi / np.sqrt(w**2 - k**2),
                               rtol=5e-3)


def test_phase_integrator_turns_the_correction_by_the_integrated_motor_phase(getkey):
    key = getkey()
    model = TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16, freq_residual=True,
                freq_tau=0.3, lock_f0=1.8, phase_residual=True, phase_integrator=True, key=key)
    assert model.head.out_channels == 4
    x = jnp.asarray(_phasor(np.full(600, 2.6), start=0.5, fade=0.5)[0])
    out = np.asarray(model(x))
    # The raw phase rows w, the frequency and the amplitude of the same network without
    # the integrator; theta from the NumPy loop driven by F / max(|F|, 0.1), from 0.
    plain = np.asarray(TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16,
                           freq_residual=True, freq_tau=0.3, lock_f0=1.8, key=key)(x))
    np.testing.assert_array_equal(out[2:], plain[2:])
    forcing = np.asarray(x[0] + 1j * x[1])
    theta = _motor_phase_loop(2.0 + 0.5 * plain[2], 1.0 + plain[3],
                              forcing / np.maximum(np.abs(forcing), 0.1), 1 / FS)
    want = np.exp(1j * theta) * (1 + plain[0] + 1j * plain[1])
    np.testing.assert_allclose(out[0] + 1j * out[1], want, atol=1e-9)
    y = x.at[:, 400:].set(jr.normal(getkey(), (2, 200)))
    np.testing.assert_array_equal(np.asarray(model(x)[:, :400]), np.asarray(model(y)[:, :400]))
    with pytest.raises(ValueError, match="phase_integrator"):
        TCN(hidden=8, n_blocks=1, phase_integrator=True, key=getkey())


def test_phase_integrator_checkpoint_round_trip(getkey, tmp_path):
    hyper = {"in_channels": 2, "hidden": 8, "n_blocks": 2, "kernel": 3, "dropout": 0.0,
             "heads": 2, "window": 16, "freq_center": 2.0, "freq_scale": 0.5,
             "freq_residual": True, "freq_channel": False, "freq_tau": 0.3, "fs": FS,
             "lock_f0": 1.8, "lock_elasticity": 1.0, "phase_residual": True,
             "tempo_clip": None, "phase_integrator": True, "phase_coupling": 2.0}
    model = TCN(**hyper, dtype=jnp.float32, key=getkey())
    path = nrt.surrogate.save_model(tmp_path / "pi.eqx", model, hyper, dtype="float32")
    loaded = nrt.surrogate.load(path)
    assert loaded.phase_integrator and loaded.phase_coupling == 2.0
    x = jnp.asarray(_phasor(np.full(300, 2.2), start=0.2, fade=0.3)[0], jnp.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    # kappa enters the integrated phase: another gain, another output
    other = TCN(**{**hyper, "phase_coupling": 1.0}, dtype=jnp.float32, key=getkey())
    other = eqx.tree_at(lambda m: m.head, other, model.head)
    assert not np.allclose(np.asarray(other(x)[:2]), np.asarray(model(x)[:2]))
