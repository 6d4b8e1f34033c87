"""Artefacts: bad channels named and excluded, all-bad is an error, blinks and muscle masked."""

import jax.random as jr
import numpy as np
import pytest

from nrtjax.eeg import artifacts, bands, biomarkers as bm, twin
from nrtjax.eeg.io import EEGError, EEGRecording, filter_eeg


@pytest.fixture(scope="module")
def rec():
    # Neutral rhythms without blinks or muscle, so that only injected artefacts appear.
    clean = {"clean": twin.StateProfile(8.0, 4.0, 4.0, 2.0, 3.0, 0.0, 0.0)}
    subj = twin.twin_subject(key=jr.key(30))
    return twin.simulate_twin(["clean"], seconds=20.0, key=jr.key(31), subject=subj,
                              profiles=clean)


def _damaged(rec):
    x = rec.data.copy()
    x[twin.EPOC_CHANNELS.index("O1")] = 1e-9                         # flat
    t7 = twin.EPOC_CHANNELS.index("T7")
    x[t7] = np.clip(x[t7] * 20, -150e-6, 150e-6)                      # clipped at the rails
    x[twin.EPOC_CHANNELS.index("P8")] *= 30                           # loose electrode
    return EEGRecording(x, rec.fs, rec.ch_names, "damaged")


def test_bad_channels_are_detected_and_named(rec):
    bad = artifacts.bad_channels(_damaged(rec))
    assert set(bad) == {"O1", "T7", "P8"}
    assert bad["O1"].startswith("flat") and bad["T7"].startswith("clipped")
    assert bad["P8"].startswith("noisy")
    assert artifacts.bad_channels(rec) == {}


def test_recording_with_bad_channels_runs_on_the_good_ones(rec):
    with pytest.warns(artifacts.BadChannelWarning) as record:
        an, _ = bm.analyse(_damaged(rec))
    msg = str(record[0].message)
    assert "O1: flat" in msg and "T7: clipped" in msg and "P8: noisy" in msg
    assert len(an.channels) == 11 and "O1" not in an.channels
    assert np.all(np.isfinite(an.normalised))


def test_all_flat_is_a_clear_error(rec):
    flat = EEGRecording(np.zeros_like(rec.data), rec.fs, rec.ch_names, "flat.edf")
    with pytest.raises(EEGError, match="All 14 EEG channels of flat.edf are unusable.*flat"):
        bm.analyse(flat)


def test_blink_and_muscle_windows_are_masked_on_the_right_channels(rec):
    fs = rec.fs
    x = rec.data.copy()
    t = np.arange(x.shape[1]) / fs
    blink = 150e-6 * np.exp(-0.5 * ((t - 5.0) / 0.08) ** 2)          # a blink at 5 s
    x[twin.EPOC_CHANNELS.index("AF3")] += blink
    x[twin.EPOC_CHANNELS.index("AF4")] += blink
    burst = (t > 12) & (t < 13)
    # Surface EMG: broadband power above 20 Hz (Goncharova et al. 2003).
    spec = np.fft.rfft(np.random.default_rng(0).standard_normal(t.size))
    spec[np.fft.rfftfreq(t.size, 1 / fs) < 20] = 0
    emg = np.fft.irfft(spec, t.size)
    emg = emg / emg.std() * 40e-6 * burst
    x[twin.EPOC_CHANNELS.index("T8")] += emg                         # EMG burst 12-13 s
    dirty = filter_eeg(EEGRecording(x, fs, rec.ch_names))
    times, powers = bands.sliding_band_powers(dirty.data, fs)
    win = int(2 * fs)
    idx = (np.round(times * fs).astype(int) - win)[:, None] + np.arange(win)
    ptp = np.ptp(artifacts.blink_trace(dirty.data, fs)[:, idx], axis=-1).T
    blinks, muscle = artifacts.window_artifacts(ptp, powers)
    # Windows that hold the whole blink are flagged on AF3; windows well clear of it (the
    # causal filter's after-swing lasts a few hundred ms) are not flagged anywhere.
    has_blink = (times >= 5.3) & (times - 2 <= 4.7)
    clear = (times < 4.7) | (times - 2 > 5.5)
    af3 = twin.EPOC_CHANNELS.index("AF3")
    assert has_blink.sum() >= 3 and blinks[has_blink, af3].all()
    assert not blinks[clear].any()
    has_emg = (times >= 13.0) & (times - 2 <= 12.0)              # the whole burst inside
    near_emg = (times > 12.0) & (times - 2 < 13.0)               # any part of it inside
    t8 = twin.EPOC_CHANNELS.index("T8")
    assert has_emg.sum() >= 3 and muscle[has_emg, t8].all() and not muscle[~near_emg].any()
    mean, frac = artifacts.clean_mean(powers, blinks | muscle)
    np.testing.assert_allclose(frac[has_blink], 12 / 14)
    assert np.all(frac[clear & ~near_emg] == 1.0)
    keep = ~(blinks | muscle)[3]
    np.testing.assert_allclose(mean[3], powers[3][keep].mean(0))
