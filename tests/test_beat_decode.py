"""The beat decoders on synthetic activations with known beats, and the HMM's Viterbi
against an independent dense Viterbi and a brute-force search."""

import itertools

import numpy as np
import pytest

from nrtjax.beats import BeatActivation
from nrtjax.beats.decode import (OscillatorSettings, StreamingDecoder, bar_viterbi,
                                 decode_oscillator)
from nrtjax.beats.hmm import (BarPointer, HMMSettings, decode_hmm, log_observations,
                              tempo_transitions, viterbi)

FPS = 100.0


def f_measure(ref, est, window=0.07, skip=5.0):
    """MIREX beat F-measure (Dixon 2007), beats before `skip` s ignored: the oracle."""
    ref = np.asarray(ref)[np.asarray(ref) >= skip]
    est = np.asarray(est)[np.asarray(est) >= skip]
    if ref.size == 0 or est.size == 0:
        return 0.0
    used, hits = set(), 0
    for r in ref:
        d = np.abs(est - r)
        for j in np.argsort(d):
            if d[j] > window:
                break
            if j not in used:
                used.add(j)
                hits += 1
                break
    p, r = hits / est.size, hits / ref.size
    return 0.0 if hits == 0 else 2 * p * r / (p + r)


def bumps(times, duration, height=1.0, width=0.02):
    t = np.arange(int(round(duration * FPS))) / FPS
    out = np.zeros_like(t)
    for b in np.atleast_1d(times):
        out = np.maximum(out, height * np.exp(-0.5 * ((t - b) / width) ** 2))
    return out


def activation(beats, downbeats, duration, *, extra=None, extra_height=0.5, noise=0.0, seed=0):
    beat, down = bumps(beats, duration), bumps(downbeats, duration)
    if extra is not None:
        beat = np.maximum(beat, bumps(extra, duration, extra_height))
    if noise:
        rng = np.random.default_rng(seed)
        beat = np.clip(beat + noise * rng.random(beat.size), 0, 1)
        down = np.clip(down + noise * rng.random(down.size), 0, 1)
    return BeatActivation(beat, down, FPS)


def ramp_beats(bpm0, bpm1, duration):
    t = np.arange(0, duration, 1e-4)
    phase = np.cumsum((bpm0 + (bpm1 - bpm0) * t / duration) / 60) * 1e-4
    beats = np.interp(np.arange(1, int(phase[-1])), phase, t)
    return beats[beats > 0.3]


def _cases():
    cases = {}
    for bpm in (60, 90, 120, 180):
        b = np.arange(0.5, 30, 60 / bpm)
        cases[f"steady{bpm}"] = (activation(b, b[::4], 30.5), b, b[::4])
    b = ramp_beats(90, 130, 40)
    cases["ramp"] = (activation(b, b[::4], 40.5), b, b[::4])
    b = np.arange(0.5, 30, 0.5)
    d = b[::4]
    keep = np.ones(b.size, bool)
    keep[[10, 11, 25, 41]] = False
    cases["missing"] = (activation(b[keep], d[np.isin(d, b[keep])], 30.5), b, d)
    b = np.arange(0.5, 30, 60 / 110)
    cases["noise"] = (activation(b, b[::4], 30.5, noise=0.15), b, b[::4])
    b = np.arange(0.5, 30, 60 / 100)
    cases["offbeat"] = (activation(b, b[::4], 30.5, extra=b[:-1] + 0.3, extra_height=0.6),
                        b, b[::4])
    b = np.arange(0.5, 30, 60 / 140)
    cases["waltz"] = (activation(b, b[::3], 30.5), b, b[::3])
    # 6/8 at 80 dotted quarters a minute: eighth notes (three a beat) at half height, two
    # beats a bar; 3F/2 (quarter notes) has no resonance of its own.
    b = np.arange(0.5, 30, 0.75)
    eighths = np.sort(np.concatenate([b[:-1] + 0.25, b[:-1] + 0.5]))
    cases["compound"] = (activation(b, b[::2], 30.5, extra=eighths, extra_height=0.5), b, b[::2])
    return cases


CASES = _cases()
DECODERS = {"oscillator": decode_oscillator, "hmm": decode_hmm}


@pytest.mark.parametrize("decoder", sorted(DECODERS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_decoders_find_the_beats_and_downbeats(decoder, case):
    act, beats, downs = CASES[case]
    track = DECODERS[decoder](act)
    assert track.decoder == decoder
    assert f_measure(beats, track.beats) >= 0.99, (case, track.beats)
    assert f_measure(downs, track.downbeats) >= 0.99, (case, track.downbeats)
    assert np.all(np.diff(track.beats) > 0)
    assert np.all(np.isin(track.downbeats, track.beats))
    if case.startswith("steady"):
        assert track.tempo_bpm == pytest.approx(float(case[6:]), rel=0.02)


@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_the_downbeat_activation_picks_the_metrical_level(decoder):
    # Quarter notes at 80 BPM with eighth notes almost as strong: the beat activation
    # alone repeats at 160 BPM; downbeats every four quarters make 80 BPM the beat.
    b = np.arange(0.5, 30, 0.75)
    eighths = b[:-1] + 0.375
    act = activation(b, b[::4], 30.5, extra=eighths, extra_height=0.8)
    track = DECODERS[decoder](act)
    assert track.tempo_bpm == pytest.approx(80, rel=0.03)
    assert f_measure(b, track.beats) >= 0.99
    assert f_measure(b[::4], track.downbeats) >= 0.99
    # Without the downbeats the faster level is as plausible: the oscillator's score then
    # prefers it (the level came from the downbeat activation, not from the prior).
    if decoder == "oscillator":
        flat = decode_oscillator(act._replace(downbeat=np.zeros_like(act.downbeat)))
        assert flat.tempo_bpm == pytest.approx(160, rel=0.03)


def _tempo_head(bpm, bins=80, sd=0.05):
    from nrtjax.beats.network import tempo_grid

    p = np.exp(-0.5 * (np.log2(tempo_grid(bins) / bpm) / sd) ** 2)
    return p / p.sum()


@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_the_tempo_head_picks_the_metrical_level(decoder):
    """Pulses every 0.5 s, every other one weaker (0.6), no downbeats: beats at 120 BPM,
    or at 60 on the strong pulses. The network's tempo head decides between the levels;
    with w_T = 0 (the HMM's default) the decoder ignores it."""
    strong = np.arange(0.5, 30, 1.0)
    act = activation(strong, [], 30.5, extra=strong[:-1] + 0.5, extra_height=0.6)
    act = act._replace(downbeat=np.zeros(act.beat.size))
    pulses = np.sort(np.concatenate([strong, strong[:-1] + 0.5]))
    on = {"oscillator": OscillatorSettings(tempo_weight=0.5),
          "hmm": HMMSettings(tempo_weight=1.0)}[decoder]
    off = {"oscillator": OscillatorSettings(tempo_weight=0.0), "hmm": HMMSettings()}[decoder]
    for bpm, want in ((60, strong), (120, pulses)):
        track = DECODERS[decoder](act._replace(tempo=_tempo_head(bpm)), settings=on)
        assert track.tempo_bpm == pytest.approx(bpm, rel=0.03), bpm
        assert f_measure(want, track.beats) >= 0.99, bpm
        plain = DECODERS[decoder](act._replace(tempo=_tempo_head(bpm)), settings=off)
        np.testing.assert_array_equal(plain.beats, DECODERS[decoder](act, settings=on).beats)
    with pytest.raises(ValueError, match="tempo"):
        DECODERS[decoder](act._replace(tempo=np.full(80, np.nan)))


def test_hmm_tolerance_keeps_narrow_peaks_at_their_level():
    # Peaks one to three frames wide (as the network's) at 90 BPM, no downbeat evidence:
    # observed frame by frame, the slow level's longer beat regions pay for frames near
    # zero and the path takes 180 BPM; the one-frame tolerance keeps 90.
    n, beats = 3000, np.arange(0.4, 29.5, 60 / 90)
    beat = np.zeros(n)
    for b in beats:
        i = int(round(b * FPS))
        beat[i - 1:i + 2] = (0.08, 0.5, 0.3)
    act = BeatActivation(beat, np.full(n, 0.003), FPS)
    assert decode_hmm(act).tempo_bpm == pytest.approx(90, rel=0.02)
    assert f_measure(beats, decode_hmm(act).beats) >= 0.99
    assert decode_hmm(act, settings=HMMSettings(tolerance=0)).tempo_bpm > 170


def test_missing_beats_are_interpolated_offline():
    act, beats, _ = CASES["missing"]
    track = decode_oscillator(act)
    for b in beats[[10, 11, 25, 41]]:  # no activation there: filled in between neighbours
        assert np.min(np.abs(track.beats - b)) < 0.01


def test_silence_gives_no_beats_and_bad_input_is_refused():
    quiet = BeatActivation(np.zeros(500), np.zeros(500), FPS)
    for dec in DECODERS.values():
        assert dec(quiet).beats.size == 0
        with pytest.raises(ValueError, match="NaN"):
            dec(BeatActivation(np.full(100, np.nan), np.zeros(100), FPS))
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            dec(BeatActivation(np.full(100, 3.0), np.zeros(100), FPS))
        with pytest.raises(ValueError, match="same length"):
            dec(BeatActivation(np.zeros(100), np.zeros(99), FPS))
        with pytest.raises(ValueError, match="fps"):
            dec(BeatActivation(np.zeros(100), np.zeros(100), 0.0))
    with pytest.raises(ValueError, match="bpm_range"):
        decode_oscillator(CASES["steady120"][0],
                          settings=OscillatorSettings(bpm_range=(40.0, 600.0)))
    with pytest.raises(ValueError, match="min_bpm"):
        HMMSettings(min_bpm=200.0, max_bpm=100.0)


# --- The HMM's Viterbi against independent oracles --------------------------------


def dense_model(intervals, m, lam, obs_lambda, threshold=0.0):
    """The bar-pointer model written out state by state from the paper's equations."""
    states = [(b, j, p) for b in range(m) for j, w in enumerate(intervals) for p in range(w)]
    index = {s: k for k, s in enumerate(states)}
    n = len(states)
    logA = np.full((n, n), -np.inf)
    for (b, j, p), k in index.items():
        w = intervals[j]
        if p < w - 1:
            logA[k, index[(b, j, p + 1)]] = 0.0
        else:
            probs = np.array([np.exp(-lam * abs(v / w - 1)) for v in intervals])
            probs = np.where(probs >= threshold * probs.max(), probs, 0.0)
            probs /= probs.sum()
            for j2 in range(len(intervals)):
                if probs[j2] > 0:
                    logA[k, index[((b + 1) % m, j2, 0)]] = np.log(probs[j2])
    klass = np.array([0 if p >= intervals[j] / obs_lambda else (2 if (b == 0 and m > 1) else 1)
                      for b, j, p in states])
    return states, logA, klass


def dense_viterbi(logA, log_emit):
    n = logA.shape[0]
    delta = -np.log(n) + log_emit[0]
    back = []
    for t in range(1, log_emit.shape[0]):
        cand = delta[:, None] + logA
        back.append(np.argmax(cand, axis=0))
        delta = cand.max(axis=0) + log_emit[t]
    path = [int(np.argmax(delta))]
    for bp in reversed(back):
        path.append(int(bp[path[-1]]))
    return np.array(path[::-1]), float(delta.max())


@pytest.mark.parametrize("threshold", [0.0, 0.05])
def test_viterbi_matches_a_dense_viterbi_and_brute_force(threshold):
    rng = np.random.default_rng(3)
    intervals, m, lam, olam = np.array([3, 4, 6]), 2, 5.0, 3.0
    space = BarPointer(intervals, m, olam)
    states, logA, klass = dense_model(intervals, m, lam, olam, threshold)
    # 0.05 removes the jumps between 3 and 6 frames (probability e^-5 of the largest).
    assert np.isinf(logA).sum() > np.isinf(dense_model(intervals, m, lam, olam)[1]).sum() \
        or threshold == 0
    # The same state order: beat-major, then tempo, then position.
    assert [(int(b), int(j), int(p)) for b, j, p in
            zip(space.beat, space.tempo, space.position)] == states
    np.testing.assert_array_equal(space.klass, klass)
    beat, down = rng.random(40), rng.random(40) * 0.5
    log_obs = log_observations(beat, down, olam, use_downbeat=True)
    path, score = viterbi(space, tempo_transitions(intervals, lam, threshold), log_obs)
    want_path, want_score = dense_viterbi(logA, log_obs[:, klass])
    assert score == pytest.approx(want_score, rel=1e-12)
    np.testing.assert_array_equal(path, want_path)
    # Brute force over every state sequence of a short activation.
    T = 5
    small = BarPointer(np.array([2, 3]), 2, 2.0)
    _, logA2, klass2 = dense_model([2, 3], 2, 5.0, 2.0)
    lo = log_observations(beat[:T], down[:T], 2.0, use_downbeat=True)
    emit = lo[:, klass2]
    n = small.size
    best, best_path = -np.inf, None
    for seq in itertools.product(range(n), repeat=T):
        s = -np.log(n) + emit[0, seq[0]]
        for t in range(1, T):
            s += logA2[seq[t - 1], seq[t]] + emit[t, seq[t]]
        if s > best:
            best, best_path = s, seq
    path2, score2 = viterbi(small, tempo_transitions(np.array([2, 3]), 5.0), lo)
    assert score2 == pytest.approx(best, rel=1e-12)
    np.testing.assert_array_equal(path2, best_path)


def test_bar_viterbi_matches_brute_force():
    rng = np.random.default_rng(5)
    states = [(m, p) for m in (2, 3) for p in range(m)]
    obs = rng.random(6)
    path = bar_viterbi(obs, states, 0.1)
    n = len(states)
    nxt = {k: states.index((m, (p + 1) % m)) for k, (m, p) in enumerate(states)}

    def logp(seq):
        d = np.clip(obs, 1e-6, 1 - 1e-6)
        e = [np.log(d[k]) if states[s][1] == 0 else np.log1p(-d[k]) for k, s in enumerate(seq)]
        total = -np.log(n) + sum(e)
        for a, b in zip(seq[:-1], seq[1:]):
            total += np.log((0.9 if nxt[a] == b else 0.0) + 0.1 / n)
        return total

    best = max(itertools.product(range(n), repeat=obs.size), key=logp)
    np.testing.assert_array_equal(path, best)


# --- Streaming ----------------------------------------------------------------------


def test_streaming_is_independent_of_blocks_and_keeps_its_latency():
    act = CASES["ramp"][0]
    whole = decode_oscillator(act, causal=True)
    dec = StreamingDecoder(FPS)
    rng = np.random.default_rng(0)
    got, downs, i = [], [], 0
    while i < act.beat.size:
        k = int(rng.integers(1, 60))
        new = dec.push(act.beat[i:i + k], act.downbeat[i:i + k])
        i = min(i + k, act.beat.size)
        got.append(new.beats)
        downs.append(new.downbeats)
        # Every beat up to the latency before the input's end has been reported.
        done = np.concatenate(got)
        due = whole.beats[whole.beats <= i / FPS - dec.latency_s]
        np.testing.assert_array_equal(done[:due.size], due)
    last = dec.flush()
    np.testing.assert_array_equal(np.concatenate(got + [last.beats]), whole.beats)
    np.testing.assert_array_equal(np.concatenate(downs + [last.downbeats]), whole.downbeats)
    assert dec.latency_s == pytest.approx(0.3)


@pytest.mark.parametrize("case", ["steady90", "ramp", "waltz"])
def test_streaming_equals_offline_once_locked(case):
    act, beats, downs = CASES[case]
    causal, offline = decode_oscillator(act, causal=True), decode_oscillator(act)
    end = act.beat.size / FPS - 1.0
    a = causal.beats[(causal.beats > 8.0) & (causal.beats < end)]
    b = offline.beats[(offline.beats > 8.0) & (offline.beats < end)]
    assert a.size == b.size
    # Both snap to the activation's peaks: nearly all beats are the same time.
    assert np.mean(np.abs(a - b) < 1e-6) >= 0.95 and np.max(np.abs(a - b)) < 0.07
    assert f_measure(beats, causal.beats, skip=8.0) >= 0.97  # trailing beats after the end
    da = causal.downbeats[(causal.downbeats > 8.0) & (causal.downbeats < end)]
    db = offline.downbeats[(offline.downbeats > 8.0) & (offline.downbeats < end)]
    assert da.size == db.size and np.max(np.abs(da - db)) < 0.07


def _dp_objective(local, periods, c, frames):
    d = np.diff(frames).astype(float)
    cost = np.min([np.log(d / np.broadcast_to(p, local.shape)[frames[1:]]) ** 2
                   for p in periods], axis=0)
    return local[frames].sum() - c * cost.sum()


def _brute_force_dp(local, periods, c):
    """Every admissible beat sequence (each interval within [min P / 2, 2 max P) in whole
    frames, any first frame; the last among the local peaks within one period of the end,
    or any frame there if there is none), enumerated; the best."""
    n = local.size
    ps = np.stack([np.broadcast_to(np.asarray(p, float), (n,)) for p in periods])
    tail = list(range(max(0, n - int(ps[0, -1]) - 1), n))
    peaks = [t for t in tail if 0 < t < n - 1 and local[t] > local[t - 1]
             and local[t] >= local[t + 1]]
    ends = set(peaks or tail)
    best = (-np.inf, None)

    def extend(seq):
        nonlocal best
        i = seq[-1]
        if i in ends:
            value = _dp_objective(local, periods, c, np.asarray(seq))
            if value > best[0]:
                best = (value, list(seq))
        for j in range(i + 1, n):
            if max(0, int(j - 2 * ps[:, j].max())) <= i < int(j - ps[:, j].min() / 2):
                extend(seq + [j])

    for start in range(n):
        extend([start])
    return best


@pytest.mark.parametrize("c", [0.5, 5.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_dp_beats_finds_the_best_sequence_by_brute_force(seed, c):
    from nrtjax.beats.decode import dp_beats

    rng = np.random.default_rng(seed)
    local = rng.random(27) ** 3
    wobble = np.full(local.size, 6.0) + 0.5 * np.sin(np.arange(local.size) / 5)
    for periods in ([wobble], [wobble, 9.0]):
        value, seq = _brute_force_dp(local, periods, c)
        got = dp_beats(local, periods, c)
        assert _dp_objective(local, periods, c, got) == pytest.approx(value, abs=1e-12)
        assert got.tolist() == seq


def test_dp_beats_ends_on_a_peak_not_the_final_frame():
    from nrtjax.beats.decode import dp_beats

    local = np.full(100, 0.1)   # every frame scores: the path's total grows with time
    env = np.zeros(100)
    env[90] = 5.0               # the last onset; frames after it are silent
    assert dp_beats(local, [50.0], 1.0, envelope=env)[-1] == 90
    assert dp_beats(local, [50.0], 1.0, envelope=np.zeros(100))[-1] == 99  # no peak there


def test_dp_keeps_the_phase_where_the_offbeats_are_briefly_stronger():
    # 150 BPM with eighth notes between the beats at half height; for a few beats in the
    # middle the off-beats are higher than the beats: one consistent phase over the clip
    # fits better than following them.
    b = np.arange(0.5, 30, 0.4)
    off = b[:-1] + 0.2
    loud_b, loud_off = (b > LOUD[0]) & (b < LOUD[1]), (off > LOUD[0]) & (off < LOUD[1])
    beat = np.max([bumps(b[~loud_b], 30.5), bumps(b[loud_b], 30.5, 0.6),
                   bumps(off[~loud_off], 30.5, 0.5), bumps(off[loud_off], 30.5, 0.9)], axis=0)
    act = BeatActivation(beat, bumps(b[::4], 30.5), FPS)
    track = decode_oscillator(act)
    assert f_measure(b, track.beats) >= 0.99, track.beats


LOUD = (12.0, 18.0)   # ASHLE's phase follows the off-beats here (F 0.70 with phase="ashle")


def test_tempo_curve_follows_a_log_linear_ramp_and_keeps_the_global_tempo():
    from nrtjax.beats.decode import tempo_curve

    t = np.arange(3000) / FPS
    rate = 0.01   # per second
    freq = 2.0 * np.exp(rate * t)
    period = tempo_curve(freq, 2.3, FPS)
    # P(t) = fps / f* * exp(-b (t - mean t)) with b the slope per frame.
    np.testing.assert_allclose(period, FPS / 2.3 * np.exp(-rate * (t - t.mean())), rtol=1e-9)
    np.testing.assert_allclose(tempo_curve(np.full(500, 1.7), 2.0, FPS), FPS / 2.0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_ashle_phase_finds_the_beats(case):
    act, beats, downs = CASES[case]
    track = decode_oscillator(act, settings=OscillatorSettings(phase="ashle"))
    assert f_measure(beats, track.beats) >= 0.99, (case, track.beats)
    assert f_measure(downs, track.downbeats) >= 0.99, (case, track.downbeats)


@pytest.mark.parametrize("bad", [{"phase": "viterbi"}, {"dp_lambda": -1.0},
                                 {"dp_lambda": float("nan")}])
def test_phase_settings_out_of_range_are_refused(bad):
    with pytest.raises(ValueError, match="phase|dp_lambda"):
        decode_oscillator(CASES["steady120"][0], settings=OscillatorSettings(**bad))
