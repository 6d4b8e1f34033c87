import numpy as np
import pytest

from nrtjax.audio.beat_eval import (
    METRICS,
    beat_tempo,
    f_measure,
    grid_delay,
    score_beats,
    tempo_accuracy,
)

from .helpers import load_script


# --- an independent oracle: the F-measure written out by hand (two-pointer matching) ----


def beat_hits(reference, estimate, window):
    """Largest one-to-one matching with |reference - estimate| <= window: each reference
    beat's partners form a contiguous, monotonically moving range of sorted estimates, so
    greedy matching from the left is optimal (checked against Kuhn's algorithm below)."""
    i = j = hits = 0
    while i < reference.size and j < estimate.size:
        d = estimate[j] - reference[i]
        if abs(d) <= window + 1e-9:
            hits, i, j = hits + 1, i + 1, j + 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return hits


def oracle_f(reference, estimate, window=0.07, skip=5.0):
    ref, est = reference[reference >= skip], estimate[estimate >= skip]
    hits = beat_hits(ref, est, window)
    if hits == 0:
        return 0.0
    p, r = hits / est.size, hits / ref.size
    return 2 * p * r / (p + r)


def test_perfect_and_shifted():
    ref = np.arange(0.0, 20.0, 0.5)
    assert f_measure(ref, ref) == 1.0
    assert f_measure(ref, ref + 0.069) == 1.0  # inside the 70 ms window
    assert f_measure(ref, ref + 0.071) == 0.0  # just outside


def test_hand_computed_precision_recall():
    # 10 reference beats after 5 s; the estimate hits 6 of them and adds 2 wrong beats.
    ref = 5.0 + np.arange(10) * 0.5
    est = np.sort(np.concatenate([ref[:6] + 0.03, [8.25, 9.26]]))
    # P = 6/8, R = 6/10, F = 2PR/(P+R) = 0.9/1.35 = 2/3
    assert f_measure(ref, est) == pytest.approx(2 / 3)


def test_first_five_seconds_ignored():
    ref = np.arange(0.0, 15.0, 0.5)
    est = np.concatenate([np.arange(0.25, 5.0, 0.5), ref[ref >= 5.0]])  # wrong only before 5 s
    assert f_measure(ref, est) == 1.0
    assert f_measure(ref, est, skip=0.0) == pytest.approx(2 * 20 / 30 * 20 / 30 / (40 / 30))


def test_double_and_half_tempo():
    ref = np.arange(0.0, 30.0, 0.5)
    n = np.sum(ref >= 5.0)
    double = np.arange(0.0, 30.0, 0.25)
    p, r = n / np.sum(double >= 5.0), 1.0
    assert f_measure(ref, double) == pytest.approx(2 * p * r / (p + r))
    half = ref[::2]
    p, r = 1.0, np.sum(half >= 5.0) / n
    assert f_measure(ref, half) == pytest.approx(2 * p * r / (p + r))


def test_one_to_one_matching():
    # Two estimates near one reference beat count once; a greedy match from the left must
    # not steal the only partner of the next beat.
    assert f_measure(np.array([6.0]), np.array([5.97, 6.03]), skip=0.0) == pytest.approx(2 / 3)
    ref, est = np.array([6.0, 6.12]), np.array([6.06, 6.13])
    assert f_measure(ref, est) == 1.0


def test_oracle_matching_is_maximal():
    rng = np.random.default_rng(0)
    for _ in range(50):
        ref = np.sort(rng.uniform(0, 3, rng.integers(1, 7)))
        est = np.sort(rng.uniform(0, 3, rng.integers(1, 7)))
        # maximum matching by exhaustive augmenting paths (Kuhn's algorithm)
        adj = [[j for j in range(est.size) if abs(est[j] - r) <= 0.2] for r in ref]
        match = [-1] * est.size

        def augment(i, seen):
            for j in adj[i]:
                if j not in seen:
                    seen.add(j)
                    if match[j] < 0 or augment(match[j], seen):
                        match[j] = i
                        return True
            return False

        best = sum(augment(i, set()) for i in range(ref.size))
        assert beat_hits(ref, est, 0.2) == best


def test_f_measure_agrees_with_the_hand_written_oracle():
    rng = np.random.default_rng(1)
    for _ in range(40):
        period = rng.uniform(0.3, 1.0)
        ref = np.arange(rng.uniform(0, 1), 30.0, period)
        kept = ref[rng.random(ref.size) < 0.8]
        est = np.sort(np.concatenate([kept + rng.normal(0, 0.05, kept.size),
                                      rng.uniform(0, 30, rng.integers(0, 10))]))
        assert f_measure(ref, est) == pytest.approx(oracle_f(ref, est), abs=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="No reference beats after"):
        f_measure(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="sorted"):
        f_measure(np.array([6.0, 5.5]), np.array([6.0]))
    with pytest.raises(ValueError, match="NaN"):
        f_measure(np.array([6.0, np.nan]), np.array([6.0]))
    assert f_measure(np.array([6.0, 7.0]), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="Only one reference beat"):
        score_beats(np.array([6.0]), np.array([6.0]))
    with pytest.raises(ValueError, match="NaN"):
        score_beats(np.arange(6.0, 9.0), np.array([6.0, np.nan]))
    with pytest.raises(ValueError, match="positive"):
        tempo_accuracy(0.0, 120.0)


# --- the full score set -----------------------------------------------------------------------


def test_score_set_on_a_perfect_estimate():
    ref = np.arange(0.0, 30.0, 0.5)
    s = score_beats(ref, ref, reference_downbeats=ref[::4], estimate_downbeats=ref[::4])
    assert set(s) == set(METRICS)
    for k in METRICS:
        assert s[k] == pytest.approx(1.0), k


def test_metrical_levels_and_off_beat():
    """Hand-known values: double tempo and the off-beat are wrong at the annotated level
    (CMLt 0) and right at an allowed one (AMLt 1); Acc2 accepts double tempo, Acc1 not."""
    ref = np.arange(0.0, 40.0, 0.5)  # 120 BPM
    double = np.arange(0.0, 40.0, 0.25)
    s = score_beats(ref, double)
    assert s["cmlt"] == 0.0 and s["amlt"] > 0.98
    assert s["tempo_acc1"] == 0.0 and s["tempo_acc2"] == 1.0
    off = ref + 0.25
    s = score_beats(ref, off[off < 40.0])
    assert s["f_measure"] == 0.0 and s["cmlt"] == 0.0 and s["amlt"] > 0.98
    assert s["tempo_acc1"] == 1.0
    assert s["cemgil"] == pytest.approx(np.exp(-0.25**2 / (2 * 0.04**2)), abs=1e-12)


def test_cemgil_and_p_score_hand_values():
    ref = np.arange(5.0, 25.0, 0.5)
    # Every estimate 20 ms late: Cemgil = mean over reference beats of exp(-e^2 / 2 sigma^2)
    # (each estimate scored against its nearest reference; as many estimates as beats).
    s = score_beats(ref, ref + 0.02)
    assert s["cemgil"] == pytest.approx(np.exp(-0.02**2 / (2 * 0.04**2)), abs=1e-9)
    # P-score: the cross-correlation of the two impulse trains within 20 % of the median
    # interval, over the larger beat count: half the beats missing -> 0.5.
    s = score_beats(ref, ref[::2])
    assert s["p_score"] == pytest.approx(0.5, abs=0.03)


def test_tempo_accuracy():
    assert tempo_accuracy(100.0, 103.9) == (1.0, 1.0)
    assert tempo_accuracy(100.0, 104.1) == (0.0, 0.0)
    for f in (2.0, 3.0, 0.5, 1 / 3):
        assert tempo_accuracy(100.0, 100.0 * f * 1.03) == (0.0, 1.0)
    assert tempo_accuracy(100.0, 150.0) == (0.0, 0.0)
    assert tempo_accuracy(100.0, float("nan")) == (0.0, 0.0)
    assert beat_tempo(np.arange(0, 10, 0.6)) == pytest.approx(100.0)


def test_empty_estimate_and_downbeats():
    ref = np.arange(0.0, 20.0, 0.5)
    s = score_beats(ref, np.zeros(0), reference_downbeats=ref[::4], estimate_downbeats=np.zeros(0))
    assert all(s[k] == 0.0 for k in METRICS)
    s = score_beats(ref, ref, reference_downbeats=ref[::4], estimate_downbeats=ref[2::4])
    assert s["downbeat_f"] == 0.0 and s["f_measure"] == 1.0
    assert np.isnan(score_beats(ref, ref)["downbeat_f"])
    s = score_beats(ref, ref, reference_downbeats=ref[::4], estimate_downbeats=ref[::2])
    # after 5 s: 7 reference downbeats (6, 8, ..., 18), 15 estimates (5, 6, ..., 19), 7 hits
    assert s["downbeat_f"] == pytest.approx(2 * (7 / 15) * 1.0 / (7 / 15 + 1.0))


def test_grid_delay_finds_a_constant_note_delay():
    beats = np.arange(0.0, 20.0, 0.6)  # 100 BPM
    rng = np.random.default_rng(0)
    steps = np.sort(rng.choice(np.arange(beats.size * 4 - 4), 60, replace=False))
    notes = steps * 0.15 + 0.052 + rng.uniform(-0.003, 0.003, steps.size)  # all 52 ms late
    delay, at_delay, at_zero = grid_delay(notes, beats)
    assert delay == pytest.approx(0.052, abs=0.0021)
    assert at_delay == 1.0 and at_zero == 0.0


def test_grid_delay_is_zero_for_quantised_notes():
    beats = np.arange(0.0, 10.0, 0.5)
    notes = np.concatenate([beats[:-1], beats[:-1] + 0.25, beats[:-1] + 0.375])
    delay, at_delay, at_zero = grid_delay(notes, beats)
    assert delay == 0.0 and at_delay == at_zero == 1.0
    with pytest.raises(ValueError, match="No note onset"):
        grid_delay(np.array([30.0]), beats)


def test_eval_script_splits_files_by_metrical_level(tmp_path, monkeypatch):
    # scripts/eval_beats.py --tables: the per-file CSV it wrote, read back, grouped by
    # tempo accuracy; the groups' sizes and means are counted by hand here.
    import sys

    ev = load_script("eval_beats")
    cols = ["set", "file", "piece", "tracker", "ref_bpm", "f_measure", "cmlt", "amlt", "cemgil",
            "p_score", "tempo_acc1", "tempo_acc2", "downbeat_f", "seconds", "audio_s"]
    spec_rows = [("a", "nrtjax", 1.0, 1, 1), ("b", "nrtjax", 0.6, 0, 1), ("c", "nrtjax", 0.8, 1, 1),
                 ("d", "nrtjax", 0.2, 0, 0), ("a", "madmom", 0.9, 1, 1), ("b", "madmom", 0.7, 1, 1)]
    lines = [",".join(cols)]
    for file, tracker, f, a1, a2 in spec_rows:
        lines.append(f"test,{file},p{file},{tracker},120.0,{f},0.5,0.5,0.5,0.5,{a1},{a2},,1.0,30.0")
    (tmp_path / "beat_eval.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(sys, "argv", ["eval_beats.py", "--tables", "--out", str(tmp_path)])
    ev.main()
    md = (tmp_path / "beat_eval.md").read_text()
    assert "| nrtjax | 2, 0.900 | 1, 0.600 | 1, 0.200 |" in md
    assert "| madmom | 2, 0.800 | 0 | 0 |" in md
    assert "| nrtjax | 0.650 |" in md  # the mean F of the four files
    monkeypatch.setattr(sys, "argv", ["eval_beats.py", "--tables", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit, match="does not exist"):
        ev.main()
