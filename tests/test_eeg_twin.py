"""The Emotiv Epoc X digital twin: seeded, the documented spectra and artefacts, MNE files."""

import jax.random as jr
import numpy as np
import pytest
import scipy.signal

from nrtjax.eeg import twin


def _psd(x, fs=128.0):
    return scipy.signal.welch(x, fs=fs, nperseg=512, axis=-1)


def _ch(name):
    return twin.EPOC_CHANNELS.index(name)


def test_shape_channels_rate_and_seeding():
    a = twin.simulate_twin(["neutral", "drowsy"], seconds=3.0, key=jr.key(1))
    b = twin.simulate_twin(["neutral", "drowsy"], seconds=3.0, key=jr.key(1))
    c = twin.simulate_twin(["neutral", "drowsy"], seconds=3.0, key=jr.key(2))
    assert a.data.shape == (14, 768) and a.fs == 128.0
    assert a.ch_names == ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8",
                          "FC6", "F4", "F8", "AF4")
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, c.data)
    assert a.annotations == ((0.0, 3.0, "state/neutral"), (3.0, 3.0, "state/drowsy"))
    rms_uv = a.data.std() * 1e6
    assert 5 < rms_uv < 60          # scalp EEG amplitudes


def test_relaxed_alpha_peaks_at_the_subject_iaf_over_occipital_sites():
    subj = twin.twin_subject(key=jr.key(5))
    rec = twin.simulate_twin(["relaxed_awake"], seconds=60.0, key=jr.key(6), subject=subj)
    f, p = _psd(rec.data)
    band = (f >= 7) & (f <= 14)
    peak = f[band][np.argmax(p[_ch("O1"), band])]
    assert abs(peak - subj.iaf) <= 0.5
    alpha = p[:, band].sum(1) / p[:, (f >= 1) & (f < 45)].sum(1)
    assert alpha[_ch("O1")] > 2 * alpha[_ch("AF3")]


def test_states_move_the_bands_in_the_documented_directions():
    subj = twin.twin_subject(key=jr.key(7))
    rel = {}
    for s in ("neutral", *twin.STATES):
        rec = twin.simulate_twin([s], seconds=40.0, key=jr.key(8), subject=subj)
        f, p = _psd(rec.data.mean(0))
        band = lambda lo, hi: p[(f >= lo) & (f < hi)].sum()  # noqa: E731
        total = band(1, 45)
        rel[s] = {"delta": band(1, 4) / total, "theta": band(4, 8) / total,
                  "alpha": band(8, 13) / total, "beta": band(13, 30) / total}
    n = rel["neutral"]
    assert rel["relaxed_awake"]["alpha"] > 1.5 * n["alpha"]
    assert rel["stressed"]["beta"] > 1.5 * n["beta"] and rel["stressed"]["alpha"] < n["alpha"]
    assert rel["meditative"]["theta"] > 2 * n["theta"]
    assert rel["drowsy"]["delta"] > n["delta"] and rel["drowsy"]["alpha"] < n["alpha"]
    assert rel["focused"]["beta"] > n["beta"] and rel["focused"]["alpha"] < n["alpha"]


def test_background_is_one_over_f_and_line_noise_is_at_50_hz():
    subj = twin.twin_subject(key=jr.key(9))
    quiet = {"quiet": twin.StateProfile(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)}
    rec = twin.simulate_twin(["quiet"], seconds=60.0, key=jr.key(9), subject=subj,
                             profiles=quiet)
    f, p = _psd(rec.data)
    sel = (f >= 4) & (f <= 45)
    # PSD ~ (f^2 + 1)^(-chi/2): log-log slope -chi f^2/(f^2+1), within 6% of -chi here.
    slope = np.polyfit(np.log(f[sel]), np.log(p[:, sel].mean(0)), 1)[0]
    assert slope == pytest.approx(-subj.exponent, rel=0.06)
    rec = twin.simulate_twin(["neutral"], seconds=60.0, key=jr.key(9), subject=subj)
    f, p = _psd(rec.data)
    k = np.argmin(np.abs(f - 50.0))
    assert np.all(p[:, k] > 10 * p[:, k - 8])


def test_blinks_are_frontal_and_muscle_is_temporal():
    subj = twin.twin_subject(key=jr.key(10))
    rec = twin.simulate_twin(["stressed"], seconds=60.0, key=jr.key(11), subject=subj)
    x = rec.data * 1e6
    assert np.ptp(x[_ch("AF3")]) > 100 and np.ptp(x[_ch("AF3")]) > 2 * np.ptp(x[_ch("O1")])
    f, p = _psd(rec.data)
    gamma = p[:, (f >= 30) & (f < 45)].sum(1)
    assert gamma[_ch("T7")] > 2 * gamma[_ch("O1")]


def test_labels_and_bad_state_names():
    rec = twin.simulate_twin(["focused", "drowsy"], seconds=10.0, key=jr.key(0))
    times = np.array([2.0, 10.0, 11.0, 12.0, 20.0])
    np.testing.assert_array_equal(twin.state_labels(rec, times, 2.0), [1, 1, -1, 4, 4])
    with pytest.raises(ValueError, match="Unknown twin states"):
        twin.simulate_twin(["anxious"], seconds=1.0, key=jr.key(0))
