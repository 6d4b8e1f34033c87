"""Biomarker formulas, baseline normalisation, state classification on held-out twins, and
real recordings shipped in the pyedflib package."""

import glob
import os
import warnings

import jax.random as jr
import numpy as np
import pytest

from nrtjax.eeg import artifacts, bands, biomarkers as bm, classify, mapping, twin
from nrtjax.eeg.io import load_eeg


def test_formulas_on_hand_made_band_powers():
    # delta, theta, alpha, beta, gamma, high_beta, low_beta
    p = np.array([5.0, 2.0, 4.0, 3.0, 0.5, 1.5, 1.2])
    assert list(bands.BANDS)[5:] == ["high_beta", "low_beta"]
    e, r, s, a = bm.biomarkers(p)
    assert e == pytest.approx(3.0 / (4.0 + 2.0))       # Pope et al. 1995
    assert r == pytest.approx(4.0 / 3.0)
    assert s == pytest.approx(1.5 / (4.0 + 1.2))
    assert a == pytest.approx(3.0 / 2.0)
    # Ratios of powers: a common gain (electrode impedance, amplifier) cancels.
    np.testing.assert_allclose(bm.biomarkers(7.3 * p), bm.biomarkers(p))


def test_baseline_normalisation_is_one_at_baseline_and_removes_subject_gain():
    subj = twin.twin_subject(key=jr.key(20))
    base = twin.simulate_twin(["neutral"], seconds=60.0, key=jr.key(21), subject=subj)
    rec = twin.simulate_twin(["neutral", "relaxed_awake"], seconds=40.0, key=jr.key(22),
                             subject=subj)
    an, _ = bm.analyse(rec, baseline=base)
    lab = twin.state_labels(rec, an.times, 2.0, states=("neutral", "relaxed_awake"))
    med = np.median(an.normalised[lab == 0], axis=0)
    # Two independent neutral recordings: medians agree within sampling variability.
    np.testing.assert_allclose(med, 1.0, rtol=0.3)
    assert np.median(an.normalised[lab == 1, 1]) > 2.0        # relaxation up
    # Scaling the whole recording and its baseline changes nothing after normalisation.
    louder = type(rec)(rec.data * 3.0, rec.fs, rec.ch_names, annotations=rec.annotations)
    louder_base = type(base)(base.data * 3.0, base.fs, base.ch_names)
    an3, _ = bm.analyse(louder, baseline=louder_base, thresholds=artifacts.ArtifactThresholds(
        blink_uv=300.0))
    an1, _ = bm.analyse(rec, baseline=base, thresholds=artifacts.ArtifactThresholds(blink_uv=100.0))
    np.testing.assert_allclose(an3.normalised, an1.normalised, rtol=1e-6)


def _session(seed, seconds):
    k1, k2, k3 = jr.split(jr.key(seed), 3)
    subj = twin.twin_subject(key=k1)
    base = twin.simulate_twin(["neutral"], seconds=60.0, key=k2, subject=subj)
    rec = twin.simulate_twin(twin.STATES, seconds=seconds, key=k3, subject=subj)
    an, _ = bm.analyse(rec, baseline=base)
    return an, twin.state_labels(rec, an.times, 2.0)


@pytest.fixture(scope="module")
def trained():
    an, lab = _session(100, 40.0)
    return classify.StateClassifier.fit(an.features, lab, twin.STATES), an, lab


def test_states_are_separated_on_a_held_out_subject(trained):
    clf, _, _ = trained
    an, lab = _session(101, 30.0)              # another subject, other noise
    cm = classify.confusion_matrix(lab, clf.predict(an.features), len(twin.STATES))
    acc = np.trace(cm) / cm.sum()
    assert cm.sum() == (lab >= 0).sum() > 250
    assert acc >= 0.95, cm


def test_lda_matches_a_numpy_gaussian_reference():
    # Two Gaussian classes with known means and shared identity covariance: the LDA rule
    # is the nearest mean (equal priors), checked on points whose answer is known.
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal((500, 2)), rng.standard_normal((500, 2)) + [4, 0]])
    y = np.repeat([0, 1], 500)
    clf = classify.StateClassifier.fit(x, y, ("a", "b"), shrinkage=0.0)
    np.testing.assert_allclose(clf.means, [[0, 0], [4, 0]], atol=0.15)
    np.testing.assert_array_equal(clf.predict(np.array([[1.0, 3.0], [3.0, -3.0]])), [0, 1])
    with pytest.raises(ValueError, match="Too few training windows"):
        classify.StateClassifier.fit(x[:3], np.array([0, 0, 1]), ("a", "b"))


def test_mapping_moves_parameters_in_the_documented_direction(trained):
    _, an, lab = trained
    per = {}
    for i, s in enumerate(twin.STATES):
        p = mapping.map_biomarkers(np.median(an.normalised[lab == i], axis=0))
        per[s] = p
    base = mapping.BASE
    assert per["stressed"]["rho"] > mapping.LORENZ_CRITICAL_RHO
    assert per["stressed"]["rho"] == max(v["rho"] for v in per.values())
    assert per["stressed"]["lambda2"] > base["lambda2"]
    for s in ("relaxed_awake", "meditative"):
        assert per[s]["lambda2"] < base["lambda2"]
        assert per[s]["rho"] < mapping.LORENZ_CRITICAL_RHO
    assert per["focused"]["lambda1"] > base["lambda1"]
    assert per["focused"]["tempo_bpm"] > base["tempo_bpm"]
    assert per["drowsy"]["lambda1"] < base["lambda1"]
    assert per["drowsy"]["tempo_bpm"] < base["tempo_bpm"]


def test_mapping_table_values():
    p = mapping.map_biomarkers(np.ones(4))
    assert p == {"tempo_bpm": 120.0, "lambda1": 4.0, "lambda2": 2.0, "rho": 25.0}
    # Relaxation at 4x baseline (u_R = 1), stress at half (u_S = -1/2), others at baseline.
    p = mapping.map_biomarkers(np.array([1.0, 4.0, 0.5, 1.0]))
    assert p["lambda2"] == pytest.approx(0.5) and p["rho"] == pytest.approx(20.5)
    assert p["tempo_bpm"] == 120.0 and p["lambda1"] == 4.0
    p = mapping.map_biomarkers(np.array([4.0, 1.0, 1.0, 0.25]))
    assert p["tempo_bpm"] == pytest.approx(120 * 2**0.3) and p["lambda1"] == pytest.approx(2.0)
    # Extreme inputs stay inside the documented ranges; NaN counts as baseline.
    x = np.array([[1e9, 1e-9, 1e9, 1e9], [1e-9, 1e9, 1e-9, 1e-9], [np.nan] * 4])
    out = mapping.map_biomarkers(x)
    for k, (lo, hi) in mapping.RANGES.items():
        v = out[k]
        assert np.all((v >= lo - 1e-9) & (v <= hi + 1e-9)), k
    assert out["rho"][2] == 25.0


def _pyedflib_files():
    pyedflib = pytest.importorskip("pyedflib")
    root = os.path.dirname(pyedflib.__file__)
    files = sorted(glob.glob(os.path.join(root, "**", "*.[eb]df"), recursive=True))
    assert files, "pyedflib ships its test EDF/BDF files"
    return files


def test_real_recordings_from_the_pyedflib_wheel():
    # test_subsecond.edf / test_utf8.edf hold a real clinical Fp1 trace (128 Hz, 698 s);
    # the test_generator files hold generator signals (sines, square, ramp, noise).
    for path in _pyedflib_files():
        rec = load_eeg(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", artifacts.BadChannelWarning)
            an, base = bm.analyse(rec, baseline=30.0)
        name = os.path.basename(path)
        assert np.all(np.isfinite(an.powers)) and np.all(an.powers >= 0), name
        assert np.all(np.isfinite(an.normalised)) and np.all(an.normalised > 0), name
        params = mapping.map_biomarkers(an.normalised)
        for k, (lo, hi) in mapping.RANGES.items():
            v = params[k]
            assert np.all((v >= lo - 1e-9) & (v <= hi + 1e-9)), (name, k)
        if "subsecond" in name:
            assert an.channels == ("Fp1",)
            # Real scalp EEG: most power below 13 Hz, 1/f-like (delta > beta).
            rel = an.powers[:, :5] / an.powers[:, :5].sum(1, keepdims=True)
            assert np.median(rel[:, 0]) > np.median(rel[:, 3])
            # Engagement of resting scalp EEG is of order 0.1-1 (Pope et al. 1995).
            assert 0.05 < np.median(an.raw[:, 0]) < 2.0


def test_generator_file_bad_channels_are_named():
    path = [p for p in _pyedflib_files() if p.endswith("data/test_generator.edf")][0]
    rec = load_eeg(path)
    with pytest.warns(artifacts.BadChannelWarning, match="squarewave: clipped"):
        an, _ = bm.analyse(rec)
    assert "squarewave" in an.bad_channels and "sine 8 Hz" in an.channels
    assert bands.BANDS["alpha"] == (8.0, 13.0)


@pytest.mark.slow
def test_state_accuracy_over_ten_held_out_subjects():
    # The fast test above covers one held-out subject; this one pools 3 training subjects
    # (as `nrtjax eeg_duet` does) and scores 10 others.
    train = [_session(s, 40.0) for s in (10, 11, 12)]
    clf = classify.StateClassifier.fit(np.concatenate([a.features for a, _ in train]),
                                       np.concatenate([lab for _, lab in train]), twin.STATES)
    accs = []
    for seed in range(20, 30):
        an, lab = _session(seed, 30.0)
        cm = classify.confusion_matrix(lab, clf.predict(an.features), len(twin.STATES))
        accs.append(np.trace(cm) / cm.sum())
    print("held-out window accuracy per subject:", np.round(accs, 3))
    assert min(accs) >= 0.95 and np.mean(accs) >= 0.97
