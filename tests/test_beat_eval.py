import numpy as np
import pytest

from nrtjax.audio.beat_eval import beat_hits, f_measure, grid_delay


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
    # Two estimates near one reference beat count once.
    assert beat_hits(np.array([1.0]), np.array([0.97, 1.03]), 0.07) == 1
    assert beat_hits(np.array([1.0, 1.1]), np.array([1.05]), 0.07) == 1
    # Greedy from the left must not steal the only partner of the next beat.
    assert beat_hits(np.array([1.0, 1.12]), np.array([1.06, 1.13]), 0.07) == 2


def test_brute_force_matching_agrees():
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


def test_errors():
    with pytest.raises(ValueError, match="No reference beats after"):
        f_measure(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="sorted"):
        f_measure(np.array([6.0, 5.5]), np.array([6.0]))
    with pytest.raises(ValueError, match="NaN"):
        f_measure(np.array([6.0, np.nan]), np.array([6.0]))
    assert f_measure(np.array([6.0, 7.0]), np.zeros(0)) == 0.0


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
