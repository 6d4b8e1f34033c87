"""Beat accuracy on synthetic audio with known beats (click tracks, drum patterns, a
tempo ramp), drum events, headroom of the mix, and the tracker's pieces."""

import jax.numpy as jnp
import numpy as np
import pytest

from nrtjax.audio.beat_eval import f_measure
from nrtjax.audio.groove_drums import HAT, KICK, SNARE, drum_events, grid_times
from nrtjax.audio.features import onset_envelope
from nrtjax.audio.groove import align_beats, extract_groove_envelope, subframe_peaks
from nrtjax.audio.tracking import TrackerSettings, Tracking, periodicity, salience

SR = 22050


def _voice(kind: str, rng) -> np.ndarray:
    n = np.arange(int(0.15 * SR))
    if kind == "click":
        return np.sin(2 * np.pi * 1000 * n / SR) * np.exp(-n / (0.004 * SR))
    if kind == "kick":
        return np.sin(2 * np.pi * (50 + 60 * np.exp(-n / (0.03 * SR))) * n / SR) * np.exp(-n / (0.06 * SR))
    if kind == "snare":
        return 0.6 * rng.standard_normal(n.size) * np.exp(-n / (0.05 * SR))
    return 0.25 * np.diff(rng.standard_normal(n.size + 1)) * np.exp(-n / (0.01 * SR))


def _render(hits, duration, seed=0):
    rng = np.random.default_rng(seed)
    y = 0.003 * rng.standard_normal(int(duration * SR))
    for t, kind, vel in hits:
        v = _voice(kind, rng)
        i = int(round(t * SR))
        y[i:i + v.size] += vel * v[: max(0, y.size - i)]
    return (0.9 * y / np.abs(y).max()).astype(np.float32)


def ramp_beats(bpm0, bpm1, duration, start=0.3):
    """Beat times for a tempo rising linearly from bpm0 to bpm1 (phase = integral of f)."""
    t = np.arange(0, duration, 1e-4)
    f = (bpm0 + (bpm1 - bpm0) * t / duration) / 60
    phase = np.cumsum(f) * 1e-4
    return np.interp(np.arange(np.ceil(phase[-1] - f[0] * start)) + f[0] * start, phase, t)


def drum_pattern(beats):
    """Kick on 1 and 3, snare on 2 and 4, hats on the eighths, with velocity accents."""
    hits = []
    for k, b in enumerate(beats):
        hits.append((b, "kick" if k % 2 == 0 else "snare", 1.0 if k % 4 == 0 else 0.8))
        hits.append((b, "hat", 0.7))
        if k + 1 < beats.size:
            hits.append((0.5 * (b + beats[k + 1]), "hat", 0.5))
    return hits


def _score(y, beats):
    g = extract_groove_envelope(onset_envelope(y, SR))
    return f_measure(beats, g.beats), g


@pytest.mark.parametrize("bpm", [90.0, 120.0, 150.0])
def test_click_track(bpm):
    beats = np.arange(0.4, 30.0, 60 / bpm)
    f, g = _score(_render([(b, "click", 1.0) for b in beats], 30.0), beats)
    assert f >= 0.99
    assert g.tempo_bpm == pytest.approx(bpm, rel=0.01)


@pytest.mark.parametrize("bpm", [100.0, 128.0])
def test_drum_pattern(bpm):
    beats = np.arange(0.25, 30.0, 60 / bpm)
    f, g = _score(_render(drum_pattern(beats), 30.0, seed=1), beats)
    assert f >= 0.99
    # The groove pattern is the bar's onsets: beats and eighths strong, other 16ths weak.
    assert g.events.pattern[[0, 4, 8, 12]].min() > 2 * g.events.pattern[[1, 3, 5, 7]].max()


def test_tempo_ramp():
    beats = ramp_beats(100.0, 130.0, 40.0)
    f, g = _score(_render(drum_pattern(beats), 40.0, seed=2), beats)
    assert f >= 0.99
    # ASHLE follows the tempo change by frequency learning (within 4 BPM after 10 s).
    tr = g.tracking
    true_bpm = 100.0 + 30.0 * tr.ts / 40.0
    late = tr.ts > 10
    assert np.median(np.abs(60 * tr.freq[late] - true_bpm[late])) < 4.0


def test_causal_readout_locks():
    """Without the offline refinement, beats read at a fixed motor phase are periodic
    at the true tempo (ASHLE locked to the GrFNN forcing)."""
    beats = np.arange(0.4, 30.0, 0.5)
    env = onset_envelope(_render([(b, "click", 1.0) for b in beats], 30.0), SR)
    g = extract_groove_envelope(env, refine=False)
    late = g.beats[g.beats > 15]
    np.testing.assert_allclose(np.diff(late), 0.5, atol=0.02)
    lag = np.angle(np.mean(np.exp(2j * np.pi * late / 0.5)))
    spread = np.abs(np.mean(np.exp(2j * np.pi * late / 0.5)))
    assert spread > 0.95  # a constant lag: phase locked
    del lag


def test_salience_adds_the_octave_above():
    amp = np.arange(1.0, 9.0)[None]
    s = np.asarray(salience(jnp.asarray(amp), per_octave=2, harmonic=0.5))
    np.testing.assert_allclose(s[0], amp[0] + 0.5 * np.concatenate([amp[0, 2:], [0, 0]]))


def test_settings_grid_is_log_spaced():
    f = TrackerSettings().freqs()
    np.testing.assert_allclose(f[24] / f[0], 2.0)
    assert f[0] == 0.5 and f[-1] == 8.0


def _acf_direct(x: np.ndarray, lag: int) -> float:
    """Unbiased autocorrelation at one lag, normalised by lag 0 (direct sums)."""
    e = x - x.mean()
    r0 = np.sum(e * e) / e.size
    return float(np.sum(e[: e.size - lag] * e[lag:]) / (e.size - lag) / r0) if lag < e.size else 0.0


def test_periodicity_matches_direct_autocorrelation():
    rng = np.random.default_rng(3)
    x = rng.random(600) ** 4
    fs, freqs, harmonics, hw = 100.0, np.array([0.7, 1.3, 2.0, 3.1, 6.0]), 3, 1 / 48
    want = []
    for f in freqs:
        vals = []
        for h in range(1, harmonics + 1):
            lag = h * fs / f
            lags = range(max(1, int(np.floor(lag * 2 ** -hw))), int(np.ceil(lag * 2 ** hw)) + 1)
            vals.append(max(_acf_direct(x, k) for k in lags))
        want.append(np.mean(vals))
    got = periodicity(x, fs, freqs, harmonics=harmonics, half_width=hw)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_periodicity_peaks_at_the_beat_not_the_offbeat():
    x = np.zeros(2000)
    x[::50] = 1.0  # 2 Hz pulses at 100 frames/s
    p = periodicity(x, 100.0, np.array([2.0, 4.0, 1.0]), harmonics=1)
    assert p[0] > 0.95 and p[2] > 0.95  # the beat and the two-beat period repeat
    assert p[1] < 0.05  # a half-beat lag lands between pulses
    # with two harmonics the half-beat rate gets credit only for its second lag (a beat)
    p2 = periodicity(x, 100.0, np.array([2.0, 4.0]), harmonics=2)
    assert p2[0] > 0.95 and abs(p2[1] - 0.5 * (p[1] + p[0])) < 0.02


def test_subframe_peaks_recovers_a_parabola_vertex():
    # samples of -(x - v)^2 with v between frames: the 3-point vertex is exact
    x = np.arange(20.0)
    for v in (7.0, 7.3, 7.5, 6.6):
        env = 10.0 - (x - v) ** 2
        k = int(np.argmax(env))
        np.testing.assert_allclose(subframe_peaks(env, np.array([k])), [v], atol=1e-12)
    # a frame that is not a local peak, and the edges, are left where they are
    env = np.array([0.0, 1.0, 2.0, 3.0, 2.5, 0.0])
    np.testing.assert_array_equal(subframe_peaks(env, np.array([0, 1, 5])), [0.0, 1.0, 5.0])


def _pulse_tracking(fs, n, motor_hz, global_hz):
    ts = np.arange(n) / fs
    return Tracking(ts=ts, phase=np.zeros(n), freq=np.full(n, motor_hz), amp=np.ones(n),
                    forcing_phase=np.zeros(n), tempo_hz=global_hz, freqs=np.ones(1),
                    profile_ts=np.zeros(1), profile=np.zeros((1, 1)))


@pytest.mark.parametrize("motor_hz, global_hz", [(1.5, 2.0), (2.0, 1.5)])
def test_align_beats_takes_the_tempo_hypothesis_the_onsets_support(motor_hz, global_hz):
    # pulses at 2 Hz; one of the two periods offered to the DP is 33 % off. With the
    # wrong one alone the DP would skip or insert beats; with both it keeps every pulse.
    fs, n = 100.0, 2000
    env = np.zeros(n)
    pulses = np.arange(25, n - 10, 50)
    env[pulses] = 1.0
    beats = align_beats(_pulse_tracking(fs, n, motor_hz, global_hz), env, fs, 0.0,
                        phase_weight=0.0)
    np.testing.assert_allclose(beats, pulses / fs, atol=1e-9)


def test_drum_events_layout():
    beats = np.arange(0.0, 8.0, 0.5)  # 16 beats = 4 bars
    fs = 100.0
    env = np.zeros(int(8.5 * fs))
    env[(beats * fs).astype(int)] = 1.0
    env[(beats[::4] * fs).astype(int)] = 3.0  # accented downbeats from beat 0
    ev = drum_events(beats, env, fs, duration=8.0)
    assert ev.downbeat == 0
    kicks = ev.times[ev.instrument == KICK]
    snares = ev.times[ev.instrument == SNARE]
    hats = ev.times[ev.instrument == HAT]
    np.testing.assert_allclose(kicks, beats[::2])  # 1 and 3 (no syncopation in the song)
    np.testing.assert_allclose(snares, beats[1::2])  # 2 and 4
    np.testing.assert_allclose(hats, grid_times(beats)[::2])  # eighths
    assert np.all((ev.velocity >= 0) & (ev.velocity <= 1))
    assert np.all(np.diff(ev.times) >= 0)
