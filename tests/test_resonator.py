"""The shared beat resonator: analytic responses, NumPy references, and the read-outs
the tracker, the surrogate and the video coupling had before they shared it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nrtjax import Signal, simulate
from nrtjax.audio import resonator as rs
from nrtjax.models import GrFNN


def test_grid_and_linear_bank_response_match_the_analytic_steady_state():
    s = rs.ResonatorSettings(fmin=1.0, per_octave=4, octaves=1.0, alpha=-0.5)
    f = s.freqs()
    np.testing.assert_allclose(f, 2.0 ** (np.arange(5) / 4))
    # z' = z (alpha + i 2 pi) f_k + f_k x with x = cos(2 pi f0 t): the steady state is
    # f_k/2 [e^{iwt} / (iw - a_k) + e^{-iwt} / (-iw - a_k)], a_k = (alpha + i 2 pi) f_k.
    f0, fs, dur = 1.3, 1000.0, 20.0  # the input is linearly interpolated: error (w dt)^2 / 8
    ts = np.arange(int(dur * fs) + 1) / fs
    z = np.asarray(simulate(s.bank(), Signal(ts, np.cos(2 * np.pi * f0 * ts)), dt=1 / fs,
                            y0=0.0).ys)
    w, a = 2 * np.pi * f0, (s.alpha + 2j * np.pi) * f
    t = ts[-1]
    want = f / 2 * (np.exp(1j * w * t) / (1j * w - a) + np.exp(-1j * w * t) / (-1j * w - a))
    np.testing.assert_allclose(z[-1], want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="alpha < 0"):
        rs.resonator_bank(f, 0.1)
    with pytest.raises(ValueError, match="fmin > 0"):
        rs.octave_grid(0.0, 4, 1.0)


def test_salience_matches_numpy_term_by_term():
    s = rs.ResonatorSettings(fmin=0.7, per_octave=6, octaves=2.0, alpha=-0.2, harmonic=0.3,
                             tilt=0.5, prior_f=2.0, prior_sd=0.8, buildup_floor=0.5)
    f = s.freqs()
    ts = np.array([0.0, 1.0, 5.0])
    amp = np.random.default_rng(0).uniform(0.1, 1.0, (ts.size, f.size))
    a = amp / (1 - np.exp(-0.2 * f[None, :] * np.maximum(ts, 0.5)[:, None]))
    up = np.zeros_like(a)
    up[:, :-6] = a[:, 6:]
    weight = f ** -0.5 * np.exp(-0.5 * (np.log2(f / 2.0) / 0.8) ** 2)
    got = rs.salience(jnp.asarray(amp), jnp.asarray(f), s, jnp.asarray(ts))
    np.testing.assert_allclose(np.asarray(got), (a + 0.3 * up) * weight[None, :], rtol=1e-12)
    with pytest.raises(ValueError, match="ts"):
        rs.salience(jnp.asarray(amp), jnp.asarray(f), s)
    plain = rs.salience(jnp.asarray(amp), jnp.asarray(f), s._replace(buildup_floor=None))
    amp_up = np.zeros_like(amp)
    amp_up[:, :-6] = amp[:, 6:]
    np.testing.assert_allclose(np.asarray(plain), (amp + 0.3 * amp_up) * weight[None, :],
                               rtol=1e-12)


def test_track_peak_matches_a_python_loop():
    rng = np.random.default_rng(1)
    score = rng.uniform(0.1, 1.0, (200, 30)) ** 4
    search, hyst, start = 2, 1.3, 7
    c, want = start, []
    for row in score:
        lo, hi = max(0, c - search), min(row.size, c + search + 1)
        local = lo + int(np.argmax(row[lo:hi]))
        top = int(np.argmax(row))
        c = top if row[top] > hyst * row[local] else local
        want.append(c)
    got = rs.track_peak(jnp.asarray(score), search=search, hysteresis=hyst, start=start)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_band_read_outs_match_numpy():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 12)) + 1j * rng.normal(size=(5, 12))
    z[4] = 0.0
    peaks = np.array([0, 3, 5, 11, 6])
    band = np.exp(-0.5 * ((np.arange(12)[None, :] - peaks[:, None]) / 1.5) ** 2)
    np.testing.assert_allclose(np.asarray(rs.gaussian_band(jnp.asarray(peaks), 12, 1.5)), band,
                               rtol=1e-14)
    mix = (band * z).sum(axis=1)
    want = np.where(np.abs(mix) > 0, mix / np.where(np.abs(mix) > 0, np.abs(mix), 1), 0)
    got = rs.band_phasor(jnp.asarray(z), jnp.asarray(band))
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-14)
    units = np.where(np.abs(z) > 0, z / np.where(np.abs(z) > 0, np.abs(z), 1), 0)
    mix = (band * units).sum(axis=1)
    want = np.where(np.abs(mix) > 0, mix / np.where(np.abs(mix) > 0, np.abs(mix), 1), 0)
    got = rs.band_phasor(jnp.asarray(z), jnp.asarray(band), unit_each=True)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-14)
    w = (np.abs(z) / np.maximum(np.abs(z).max(axis=1, keepdims=True), 1e-300)) ** 3
    np.testing.assert_allclose(np.asarray(rs.power_weights(jnp.asarray(z), 3.0)), w, atol=1e-14)
    tot = w.sum(axis=1)
    want = (w * z).sum(axis=1) / np.where(tot > 0, tot, 1)
    np.testing.assert_allclose(np.asarray(rs.weighted_mean(jnp.asarray(z), jnp.asarray(w))), want,
                               atol=1e-14)


# --- The read-outs as they were written before the module (fixed inputs) --------------


def _old_surrogate_forcing(env, fs, s):
    """The surrogate's forcing as `surrogate/data.py` computed it with its own read-out."""
    n = round(s["per_octave"] * s["octaves"]) + 1
    freqs = s["fmin"] * 2.0 ** (np.arange(n) / s["per_octave"])
    layer = GrFNN(freqs, alpha=s["alpha"], beta1=0.0, beta2=0.0, eps=0.0)
    z = simulate(layer, Signal.sampled(env, fs), dt=1.0 / fs, throw=False).ys
    amp = jnp.abs(z)
    ts = jnp.arange(env.shape[0], dtype=amp.dtype) / fs
    t = jnp.maximum(ts, s["buildup_floor"])[:, None]
    a = amp / (1 - jnp.exp(-abs(s["alpha"]) * layer.freqs[None, :] * t))
    k = s["per_octave"]
    up = jnp.concatenate([a[:, k:], jnp.zeros_like(a[:, :k])], axis=-1)
    prior = jnp.exp(-0.5 * (jnp.log2(layer.freqs / s["prior_f"]) / s["prior_sd"]) ** 2)
    sal = (a + s["harmonic"] * up) * (layer.freqs ** (-s["tilt"]) * prior)[None, :]
    idx = jnp.arange(freqs.size)

    def step(c, row):
        local = jnp.argmax(jnp.where(jnp.abs(idx - c) <= s["search"], row, -jnp.inf))
        top = jnp.argmax(row)
        c = jnp.where(row[top] > s["hysteresis"] * row[local], top, local)
        return c, c

    _, peaks = jax.lax.scan(step, jnp.argmax(sal[0]), sal)
    band = jnp.exp(-0.5 * ((idx[None, :] - peaks[:, None]) / s["band_sigma"]) ** 2)
    mix = jnp.sum(band.astype(z.dtype) * z, axis=1)
    phasor = mix / jnp.where(jnp.abs(mix) > 0, jnp.abs(mix), 1.0)
    top_amp = jax.lax.cummax(jnp.max(amp, axis=1))
    gain = top_amp**2 / (top_amp**2 + s["gate"] ** 2)
    t0, t1 = s["fade"]
    return phasor * gain * jnp.clip((ts - t0) / (t1 - t0), 0.0, 1.0)


def test_surrogate_forcing_is_unchanged():
    from nrtjax.surrogate.data import FORCING_SETTINGS, forcing_from_envelope, onset_envelope

    rng = np.random.default_rng(0)
    onsets = np.sort(rng.uniform(0, 6, 20))
    ts = np.arange(0, 6, 1 / 128)
    env = onset_envelope(onsets, rng.uniform(0.2, 1, 20), ts)
    got = np.asarray(forcing_from_envelope(env, 128.0))
    want = np.asarray(_old_surrogate_forcing(env, 128.0, FORCING_SETTINGS))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_video_and_tracker_read_outs_are_unchanged():
    from nrtjax.audio.tracking import TrackerSettings, band_forcing
    from nrtjax.video import motion_forcing

    # The video coupling's amplitude-weighted output, as `video/coupling.py` wrote it.
    tv = np.arange(0, 8, 1 / 60)
    energy = 1 + 0.3 * np.sin(2 * np.pi * 1.7 * tv)
    mf = motion_forcing(tv, energy)
    freqs = np.geomspace(0.5, 4.0, 48)
    bank = GrFNN(freqs, alpha=-0.5, beta1=-1.0, beta2=0.0, eps=0.0, weight=1.0)
    z = simulate(bank, Signal(tv, energy / energy.mean() - 1), dt=float(tv[1] - tv[0]),
                 y0=0.0).ys
    r = jnp.abs(z)
    peak = jnp.max(r, axis=1, keepdims=True)
    wts = (r / jnp.where(peak > 0, peak, 1.0)) ** 8.0
    total = jnp.sum(wts, axis=1)
    w = jnp.sum(wts * z, axis=1) / jnp.where(total > 0, total, 1.0)
    strength = jnp.tanh(jnp.maximum(jnp.abs(w) - 0.02, 0.0) / 0.05)
    want = jnp.where(jnp.abs(w) > 0, w / jnp.where(jnp.abs(w) > 0, jnp.abs(w), 1.0), 0.0)
    np.testing.assert_allclose(np.asarray(mf.signal.xs), np.asarray(want * strength), atol=1e-12)
    # The tracker's forcing: softmax-weighted unit phasors around the tempo.
    st = TrackerSettings()
    rng = np.random.default_rng(4)
    zs = jnp.asarray(rng.normal(size=(50, st.freqs().size))
                     + 1j * rng.normal(size=(50, st.freqs().size)))
    f = jnp.asarray(st.freqs())
    amp = jnp.abs(zs)
    k = st.per_octave
    sal = amp + st.harmonic * jnp.concatenate([amp[:, k:], jnp.zeros_like(amp[:, :k])], axis=-1)
    logw = (st.sharpness * jnp.log(sal + 1e-12)
            - 0.5 * (jnp.log2(f / 2.0) / st.band_octaves)[None, :] ** 2)
    mix = jnp.sum(jax.nn.softmax(logw, axis=-1).astype(zs.dtype) * zs / amp, axis=-1)
    np.testing.assert_allclose(np.asarray(band_forcing(zs, f, 2.0, st)),
                               np.asarray(mix / jnp.abs(mix)), atol=1e-12)
