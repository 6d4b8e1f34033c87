"""EEG readers: every format round-trips through MNE, channel picking, clear errors."""

import jax.random as jr
import numpy as np
import pytest
import scipy.io

from nrtjax.eeg import io, twin


@pytest.fixture(scope="module")
def rec():
    return twin.simulate_twin(["relaxed_awake", "stressed"], seconds=6.0, key=jr.key(3))


def _write_brainvision(path, data_uv, fs, names):
    # Written by hand from the BrainVision Core format spec, independent of MNE's writer.
    stem = path.with_suffix("")
    np.asarray(data_uv.T, dtype="<f4").tofile(stem.with_suffix(".eeg"))
    chans = "\n".join(f"Ch{i + 1}={n},,1,µV" for i, n in enumerate(names))
    path.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem.name}.eeg\nMarkerFile={stem.name}.vmrk\nDataFormat=BINARY\n"
        f"DataOrientation=MULTIPLEXED\nNumberOfChannels={len(names)}\n"
        f"SamplingInterval={1e6 / fs}\n[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n"
        f"[Channel Infos]\n{chans}\n", encoding="utf-8")
    stem.with_suffix(".vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem.name}.eeg\n[Marker Infos]\nMk1=New Segment,,1,1,0\n", encoding="utf-8")


def _write_eeglab(path, data_uv, fs, names):
    # A minimal EEGLAB EEG struct written with scipy.io.savemat.
    n = data_uv.shape[1]
    locs = np.zeros((1, len(names)), dtype=[("labels", "O"), ("type", "O")])
    for i, c in enumerate(names):
        locs[0, i] = (c, "EEG")
    empty = np.zeros((0, 0))
    eeg = {"setname": "t", "nbchan": float(len(names)), "trials": 1.0, "pnts": float(n),
           "srate": fs, "xmin": 0.0, "xmax": (n - 1) / fs, "times": np.arange(n) / fs * 1e3,
           "data": data_uv.astype(np.float32), "chanlocs": locs, "event": empty,
           "epoch": empty, "icawinv": empty, "icasphere": empty, "icaweights": empty,
           "urevent": empty, "ref": "common"}
    scipy.io.savemat(path, {"EEG": eeg}, appendmat=False)


def test_fif_round_trip_keeps_samples_and_state_annotations(rec, tmp_path):
    path = io.write_eeg(rec, tmp_path / "twin_raw.fif")
    back = io.load_eeg(path)
    assert back.ch_names == twin.EPOC_CHANNELS and back.fs == 128.0
    np.testing.assert_allclose(back.data, rec.data, rtol=1e-6, atol=1e-12)
    assert [a[2] for a in back.annotations] == ["state/relaxed_awake", "state/stressed"]
    assert back.annotations[1][0] == pytest.approx(6.0)


def test_edf_round_trip_within_16_bit_resolution(rec, tmp_path):
    back = io.load_eeg(io.write_eeg(rec, tmp_path / "twin.edf"))
    # MNE's EDF export uses one physical range for all channels (symmetric around 0).
    step = 2 * np.abs(rec.data).max() / (2**16 - 1)
    assert np.abs(back.data - rec.data).max() <= 0.51 * step * 1.01
    assert [a[2] for a in back.annotations] == ["state/relaxed_awake", "state/stressed"]


@pytest.mark.parametrize("fmt", ["brainvision", "eeglab"])
def test_brainvision_and_eeglab_are_read(rec, tmp_path, fmt):
    uv = rec.data[:3] * 1e6
    names = ["Fp1", "Cz", "O2"]
    if fmt == "brainvision":
        path = tmp_path / "rec.vhdr"
        _write_brainvision(path, uv, rec.fs, names)
    else:
        path = tmp_path / "rec.set"
        _write_eeglab(path, uv, rec.fs, names)
    back = io.load_eeg(path)
    assert back.ch_names == tuple(names)
    np.testing.assert_allclose(back.data * 1e6, uv, rtol=1e-5, atol=1e-4)


def test_channel_names_are_normalised_and_missing_ones_fall_back_to_neighbours():
    assert io.normalise_name("EEG Fp1-REF") == "FP1"
    assert io.normalise_name(" o2 ") == "O2"
    avail = ["EEG Fp1-REF", "EEG F3-REF", "EEG C3-REF", "EEG O1-REF"]
    assert io.pick_channels(avail, ["fp1", "O1"]) == {"fp1": "EEG Fp1-REF", "O1": "EEG O1-REF"}
    with pytest.warns(io.ChannelFallbackWarning, match="FC3 -> EEG"):
        got = io.pick_channels(avail, ["FC3", "O1"])
    assert got["FC3"] in ("EEG F3-REF", "EEG C3-REF")
    with pytest.warns(io.ChannelFallbackWarning, match="T8 .*dropped"):
        got = io.pick_channels(avail, ["T8", "O1"])
    assert got == {"O1": "EEG O1-REF"}
    with pytest.raises(io.EEGError, match="None of the requested channels"), \
            pytest.warns(io.ChannelFallbackWarning):
        io.pick_channels(avail, ["T8"])


def test_load_with_channel_selection(rec, tmp_path):
    path = io.write_eeg(rec, tmp_path / "sel_raw.fif")
    back = io.load_eeg(path, channels=["O2", "o1"])
    assert back.ch_names == ("O2", "O1")
    np.testing.assert_allclose(back.data[0], rec.data[7], rtol=1e-6)


def test_bad_inputs_give_clear_errors(rec, tmp_path):
    import mne

    with pytest.raises(FileNotFoundError, match="not found"):
        io.load_eeg(tmp_path / "nope.edf")
    (tmp_path / "empty.edf").write_bytes(b"")
    with pytest.raises(io.EEGError, match="empty"):
        io.load_eeg(tmp_path / "empty.edf")
    (tmp_path / "junk.edf").write_bytes(b"0       this is not an EDF header" * 20)
    with pytest.raises(io.EEGError, match="Cannot read EEG file"):
        io.load_eeg(tmp_path / "junk.edf")
    info = mne.create_info(["ECG", "EOG left", "Resp"], 256.0, ["ecg", "eog", "misc"])
    mne.io.RawArray(np.ones((3, 1024)) * 1e-5, info, verbose="error").save(
        tmp_path / "noeeg_raw.fif", verbose="error")
    with pytest.raises(io.EEGError, match="no EEG channels"):
        io.load_eeg(tmp_path / "noeeg_raw.fif")
    slow = twin.simulate_twin(["neutral"], seconds=4.0, key=jr.key(0), fs=64.0)
    with pytest.raises(io.EEGError, match="sampled at 64 Hz.*at least 90 Hz"):
        io.load_eeg(io.write_eeg(slow, tmp_path / "slow_raw.fif"))
    short = io.EEGRecording(rec.data[:, :100], rec.fs, rec.ch_names)
    with pytest.raises(io.EEGError, match="at least 2 s"):
        io.load_eeg(io.write_eeg(short, tmp_path / "short_raw.fif"))
    nan = rec.data.copy()
    nan[4, 300] = np.nan
    with pytest.raises(io.EEGError, match="NaN or inf samples \\(first in T7"):
        io.load_eeg(io.write_eeg(io.EEGRecording(nan, rec.fs, rec.ch_names),
                                 tmp_path / "nan_raw.fif"))
    with pytest.raises(ValueError, match=".fif or .edf"):
        io.write_eeg(rec, tmp_path / "x.txt")


def test_causal_filter_removes_drift_and_line_noise():
    fs = 128.0
    t = np.arange(int(20 * fs)) / fs
    alpha = 10e-6 * np.sin(2 * np.pi * 10 * t)
    x = alpha + 50e-6 * t / 20 + 5e-6 * np.sin(2 * np.pi * 50 * t)
    out = io.filter_eeg(io.EEGRecording(x[None], fs, ("O1",))).data[0]
    tail = slice(int(5 * fs), None)
    # Steady state: the 10 Hz rhythm passes with the Butterworth's |H| (about 1), the
    # drift and the 50 Hz line are gone.
    amp = np.sqrt(2 * np.mean(out[tail] ** 2))
    assert amp == pytest.approx(10e-6, rel=0.05)
