"""Songs, the causal forcing and the ASHLE ground truth (against a NumPy RK4 reference)."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.surrogate import (ASHLE_SETTINGS, DatasetSpec, SongStyle, TRAIN_PATTERNS,
                              ground_truth, load_or_make, make_song, render_song)


def _ashle_numpy(F, fs, p):
    """Independent reference: ASHLE (Roman et al. 2023) by classical RK4 in NumPy, the
    input read by linear interpolation (half steps = mean of neighbouring samples)."""
    def vf(y, x):
        d, fd, z, f = y
        ud = d / abs(d) if abs(d) > 0 else 0
        uz = z / abs(z) if abs(z) > 0 else 0
        def osc(w):
            return w * (p["a"] + 2j * np.pi + p["b"] * abs(w) ** 2)
        drive = p["forcing"] * x
        return np.array([
            fd * (osc(d) + drive),
            fd * (-p["lambda1"] * np.real(1j * drive * np.conj(ud)) - p["gamma"] * (np.exp((fd - f) / f) - 1)),
            f * (osc(z) + ud),
            f * (-p["lambda1"] * np.real(1j * ud * np.conj(uz)) - p["lambda2"] * (np.exp((f - p["f0"]) / p["f0"]) - 1)),
        ])
    h = 1.0 / fs
    y = np.array([0.01, p["f0"], 0.01, p["f0"]], dtype=complex)
    out = [y]
    for k in range(len(F) - 1):
        xm = 0.5 * (F[k] + F[k + 1])
        k1 = vf(y, F[k])
        k2 = vf(y + h / 2 * k1, xm)
        k3 = vf(y + h / 2 * k2, xm)
        k4 = vf(y + h * k3, F[k + 1])
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y)
    return np.array(out)


def test_ground_truth_matches_numpy_rk4():
    sig = nrt.metronome(1.7, 2.0, 256.0)
    y = ground_truth(sig)
    ref = _ashle_numpy(np.asarray(sig.xs), 256.0, ASHLE_SETTINGS)
    np.testing.assert_allclose(np.asarray(y.z), ref[:, 2], atol=1e-9)
    np.testing.assert_allclose(np.asarray(y.f), ref[:, 3].real, atol=1e-9)
    np.testing.assert_allclose(np.asarray(y.d), ref[:, 0], atol=1e-9)


def test_ashle_locks_to_metronome_ground_truth():
    sig = nrt.metronome(2.2, 20.0, 256.0)
    y = ground_truth(sig)
    k = 5 * 256
    assert float(nrt.plv(jnp.angle(y.z[k:]), jnp.angle(sig.xs[k:]))) > 0.99


def test_render_song_is_causal_and_resonates_at_the_beat():
    onsets = np.arange(0.0, 20.0, 0.5)  # 120 BPM
    sig = render_song(onsets, np.ones_like(onsets), 20.0)
    assert jnp.iscomplexobj(sig.xs) and sig.fs == 256.0
    late = np.concatenate([onsets, [12.1, 12.3, 15.0]])
    sig2 = render_song(late, np.ones_like(late), 20.0)
    k = int(12.1 * 256)
    np.testing.assert_array_equal(np.asarray(sig.xs[:k + 1]), np.asarray(sig2.xs[:k + 1]))
    assert not np.allclose(np.asarray(sig.xs[k + 5:]), np.asarray(sig2.xs[k + 5:]))
    # The forcing's phase advances at the beat rate (oracle: the onset spacing).
    ph = np.unwrap(np.angle(np.asarray(sig.xs)))
    rate = (ph[-1] - ph[10 * 256]) / (2 * np.pi * 10.0)
    assert rate == pytest.approx(2.0, rel=0.01)


def test_render_song_rejects_bad_input():
    with pytest.raises(ValueError, match="velocities"):
        render_song(np.array([0.1, 0.2]), np.array([1.0]), 2.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        render_song(np.array([0.1]), np.array([1.5]), 2.0)


def test_make_song_reproducible_and_on_the_grid(getkey):
    key = getkey()
    a = make_song(TRAIN_PATTERNS["sparse"], 120.0, 10.0, key=key)
    b = make_song(TRAIN_PATTERNS["sparse"], 120.0, 10.0, key=key)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    clean = SongStyle(drift=0.0, jitter=0.0, drop=0.0, extra_rate=0.0, dynamics=0.0)
    onsets, vel, beats = make_song(TRAIN_PATTERNS["sparse"], 120.0, 10.0, key=key, style=clean)
    np.testing.assert_allclose(onsets, np.arange(20) * 0.5, atol=1e-9)
    np.testing.assert_allclose(beats, np.arange(20) * 0.5, atol=1e-9)
    assert np.all((vel > 0) & (vel <= 1))


def test_vmapped_dataset_matches_single_song_and_caches(tmp_path, getkey):
    spec = DatasetSpec(n_songs=2, duration=6.0, tempos=(100.0, 150.0))
    key = getkey()
    data = load_or_make(spec, key=key, cache_dir=tmp_path)
    files = list(tmp_path.glob("surrogate_*.npz"))
    assert len(files) == 1
    again = load_or_make(spec, key=key, cache_dir=tmp_path)
    for k in data:
        np.testing.assert_array_equal(data[k], again[k])
    # Song 1 rebuilt one by one through the public API.
    ks = jr.split(key, 3)
    onsets, vel, _ = make_song(TRAIN_PATTERNS[str(data["pattern"][1])], 150.0, 6.0, key=ks[2])
    sig = render_song(onsets, vel, 6.0)
    y = ground_truth(sig)
    np.testing.assert_allclose(data["stim_re"][1], np.real(np.asarray(sig.xs)), atol=1e-5)
    np.testing.assert_allclose(data["freq"][1], np.asarray(y.f), atol=1e-4)
    files[0].write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="delete it"):
        load_or_make(spec, key=key, cache_dir=tmp_path)


def test_dataset_spec_rejects_unknown_pattern():
    with pytest.raises(ValueError, match="Unknown patterns"):
        DatasetSpec(n_songs=1, patterns=("polka",))
    with pytest.raises(ValueError, match="tempo_range"):
        DatasetSpec(n_songs=1, tempo_range=(120.0, 80.0))


def test_track_peak_follows_locally_and_jumps_only_past_the_hysteresis():
    from nrtjax.audio import resonator as rs
    from nrtjax.surrogate.data import FORCING_SETTINGS, forcing_resonator

    h = FORCING_SETTINGS["hysteresis"]
    res = forcing_resonator()
    n, t = 40, 9
    sal = np.full((t, n), 0.01)
    # Rows 0-2: one peak drifting by one grid step per row (followed locally).
    for i, c in enumerate([10, 11, 12]):
        sal[i, c] = 1.0
    # Rows 3-5: a far peak below the hysteresis factor (ignored), then above (jumped to).
    for i, ratio in zip([3, 4, 5], [0.9 * h, 0.99 * h, 1.1 * h]):
        sal[i, 12] = 1.0
        sal[i, 30] = ratio
    # Rows 6-8: the old peak returns at 1.2x the new one (below the factor: stay at 30).
    for i in [6, 7, 8]:
        sal[i, 30] = 1.0
        sal[i, 12] = 1.2 if h > 1.2 else 0.5
    peaks = np.asarray(rs.track_peak(jnp.asarray(sal), search=res.search,
                                     hysteresis=res.hysteresis))
    np.testing.assert_array_equal(peaks, [10, 11, 12, 12, 12, 30, 30, 30, 30])


def test_forcing_is_unit_magnitude_once_resonating():
    onsets = np.arange(0.0, 12.0, 60 / 97.0)
    sig = render_song(onsets, np.full_like(onsets, 0.8), 12.0)
    mag = np.abs(np.asarray(sig.xs))
    assert np.all(mag <= 1 + 1e-12)
    assert mag[4 * 256:].min() > 0.95  # the fade-in never drops once the layer rings
    # Causal tracking at 97 BPM (the oracle is the onset spacing).
    ph = np.unwrap(np.angle(np.asarray(sig.xs)))
    rate = (ph[-1] - ph[6 * 256]) / (2 * np.pi * 6.0)
    assert rate == pytest.approx(97 / 60, rel=0.01)


def test_salience_corrects_build_up_and_applies_the_tempo_prior():
    from nrtjax.audio import resonator as rs
    from nrtjax.surrogate.data import FORCING_SETTINGS, forcing_resonator

    s, res = FORCING_SETTINGS, forcing_resonator()
    f = res.freqs()

    def salience(amp, freqs, times):
        return rs.salience(amp, freqs, res, times)
    ts = np.array([0.0, 0.25, 2.0, 10.0])
    rng = np.random.default_rng(0)
    amp = rng.uniform(0.1, 1.0, (ts.size, f.size))
    # NumPy reference, term by term: build-up 1 - exp(-|alpha| f t) (t floored), the
    # octave above (zero past the top), tilt and a log-Gaussian prior in octaves.
    t = np.maximum(ts, s["buildup_floor"])[:, None]
    a = amp / (1 - np.exp(-abs(s["alpha"]) * f[None, :] * t))
    k = s["per_octave"]
    up = np.zeros_like(a)
    up[:, : f.size - k] = a[:, k:]
    weight = f ** (-s["tilt"]) * np.exp(-0.5 * (np.log2(f / s["prior_f"]) / s["prior_sd"]) ** 2)
    ref = (a + s["harmonic"] * up) * weight[None, :]
    got = np.asarray(salience(jnp.asarray(amp), jnp.asarray(f), jnp.asarray(ts)))
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # A resonance that is still building up: a linear oscillator driven at its own
    # frequency from rest has |z| = A (1 - exp(-|alpha| f t)); corrected, all equal A.
    A = 0.3
    ring = A * (1 - np.exp(-abs(s["alpha"]) * f[None, :] * t))
    flat = np.asarray(salience(jnp.asarray(ring), jnp.asarray(f), jnp.asarray(ts)))
    np.testing.assert_allclose(flat / weight[None, :] / (1 + s["harmonic"] * (up > 0)), A,
                               rtol=1e-12)


def test_forcing_fades_in_over_the_fade_window():
    from nrtjax.surrogate.data import FORCING_SETTINGS

    t0, t1 = FORCING_SETTINGS["fade"]
    onsets = np.arange(0.0, 8.0, 0.5)
    sig = render_song(onsets, np.ones_like(onsets), 8.0)
    mag = np.abs(np.asarray(sig.xs))
    ts = np.asarray(sig.ts)
    assert np.all(mag[ts <= t0] == 0)
    ramp = (ts > t0) & (ts < t1)
    assert np.all(mag[ramp] <= (ts[ramp] - t0) / (t1 - t0) + 1e-12)
    assert mag[ts >= t1 + 0.5].min() > 0.95


@pytest.mark.parametrize("bpm", [70.0, 175.0])
def test_ground_truth_locks_to_metronomes_at_the_heldout_extremes(bpm):
    # The held-out songs span 70-175 BPM; ASHLE_SETTINGS must let ASHLE lock there
    # (oracle: the metronome's own phase).
    sig = nrt.metronome(bpm / 60.0, 15.0, 256.0)
    y = ground_truth(sig)
    k = 5 * 256
    assert float(nrt.plv(jnp.angle(y.z[k:]), jnp.angle(sig.xs[k:]))) > 0.99
