"""EEG in: any format MNE reads, channel picking by name with montage-aware fallbacks, filtering."""

import dataclasses
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.signal

# The top band edge the biomarkers need (gamma, 30-45 Hz): the Nyquist rate must exceed it.
TOP_BAND_HZ = 45.0
MIN_DURATION_S = 2.0
_NON_EEG = re.compile(r"(ECG|EKG|EOG|EMG|RESP|STATUS|TRIG|STI|EVENT|ANNOT|SPO2|PULSE|PLETH"
                      r"|PHOTIC|MARKER|ACC|GYRO|BATT|COUNTER|TEMP)", re.IGNORECASE)
_READERS = {".edf": "EDF", ".bdf": "BDF", ".gdf": "GDF", ".fif": "FIF", ".fif.gz": "FIF",
            ".vhdr": "BrainVision", ".set": "EEGLAB", ".cnt": "Neuroscan CNT"}


class EEGError(ValueError):
    """An EEG input that cannot be used: unreadable, empty, no EEG, too slow, all flat."""


class ChannelFallbackWarning(UserWarning):
    """A requested channel was missing and its nearest montage neighbour was used."""


@dataclasses.dataclass(frozen=True)
class EEGRecording:
    """A multichannel EEG recording in volts.

    **Fields:**

    - `data`: samples, shape `(channels, time)`, float64, in volts (MNE's unit).
    - `fs`: sampling rate in Hz.
    - `ch_names`: channel names, one per row of `data`.
    - `source`: the file it came from (or a description).
    - `annotations`: `(onset_s, duration_s, description)` triples from the file.
    """

    data: np.ndarray
    fs: float
    ch_names: tuple[str, ...]
    source: str = ""
    annotations: tuple[tuple[float, float, str], ...] = ()

    @property
    def duration(self) -> float:
        return self.data.shape[1] / self.fs

    def select(self, names: Sequence[str]) -> "EEGRecording":
        """The recording restricted to `names` (exact names, in that order)."""
        idx = [self.ch_names.index(n) for n in names]
        return dataclasses.replace(self, data=self.data[idx], ch_names=tuple(names))


def normalise_name(name: str) -> str:
    """A channel label reduced to its 10-20 name: `'EEG Fp1-REF'` -> `'FP1'`."""
    s = name.strip().upper()
    s = re.sub(r"^(EEG|EXG)[\s_:-]*", "", s)
    s = re.sub(r"[\s_]*-?\s*(REF|LE|RE|AR|AVG|A1|A2|M1|M2|CZ)$", "", s) if "-" in s else s
    return s.replace(" ", "")


def standard_montage():
    """MNE's template 10-05 montage (renamed `colin27_1005` in MNE 1.13)."""
    import mne

    names = mne.channels.get_builtin_montages()
    return mne.channels.make_standard_montage(
        "colin27_1005" if "colin27_1005" in names else "standard_1005")


def _montage_positions() -> dict[str, np.ndarray]:
    pos = standard_montage().get_positions()["ch_pos"]
    return {k.upper(): np.asarray(v) for k, v in pos.items()}


def _read_raw(path: Path):
    import mne

    try:
        with warnings.catch_warnings():
            # Readers warn about unusual headers (e.g. EDF physical ranges); the data are fine.
            warnings.simplefilter("ignore")
            raw = mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as e:  # MNE raises many types for corrupt files; all mean "unreadable"
        kinds = ", ".join(sorted(set(_READERS.values())))
        raise EEGError(
            f"Cannot read EEG file {path}: {type(e).__name__}: {e}. It is corrupt, truncated "
            f"or not a format MNE reads ({kinds}); re-export it, e.g. as EDF or FIF."
        ) from e
    return raw


def _eeg_channels(raw) -> list[str]:
    import mne

    picks = mne.pick_types(raw.info, eeg=True, exclude=[])
    names = [raw.ch_names[i] for i in picks if not _NON_EEG.search(raw.ch_names[i])]
    if names:
        return names
    # Montage-aware fallback: channels typed misc/unknown but named like 10-05 electrodes.
    positions = _montage_positions()
    return [n for n in raw.ch_names if normalise_name(n) in positions]


def pick_channels(available: Sequence[str], wanted: Sequence[str]) -> dict[str, str]:
    """Match requested channel names to a recording's labels.

    Names are compared after [`nrtjax.eeg.io.normalise_name`][] (case, `EEG ` prefixes and
    reference suffixes removed). A requested channel that is missing is replaced by the
    nearest available electrode on the standard 10-05 montage (within 4 cm), with a
    `ChannelFallbackWarning`; if none is near, it is dropped with the same warning.

    **Returns:** `{requested: label_in_recording}` for the channels that were found.

    **Raises:** `EEGError` if none of the requested channels (nor a neighbour) exists.
    """
    by_norm = {normalise_name(a): a for a in available}
    positions = _montage_positions()
    out, notes = {}, []
    for w in wanted:
        key = normalise_name(w)
        if key in by_norm:
            out[w] = by_norm[key]
            continue
        near = None
        if key in positions:
            cands = [(np.linalg.norm(positions[key] - positions[k]), k) for k in by_norm
                     if k in positions and by_norm[k] not in out.values()]
            if cands and min(cands)[0] < 0.04:
                near = min(cands)[1]
        if near is None:
            notes.append(f"{w} (missing, no neighbour within 4 cm: dropped)")
        else:
            out[w] = by_norm[near]
            notes.append(f"{w} -> {by_norm[near]}")
    if notes:
        warnings.warn(ChannelFallbackWarning("Channel substitutions: " + "; ".join(notes)),
                      stacklevel=2)
    if not out:
        raise EEGError(f"None of the requested channels {list(wanted)} (or a montage "
                       f"neighbour) is in the recording; it has {list(available)}.")
    return out


def load_eeg(
    path: str | os.PathLike,
    *,
    channels: Sequence[str] | None = None,
    min_fs: float = 2 * TOP_BAND_HZ,
    min_duration: float = MIN_DURATION_S,
) -> EEGRecording:
    """Read an EEG file in any format MNE reads (EDF, BDF, GDF, FIF, BrainVision, EEGLAB).

    Only EEG channels are kept: channels MNE types as EEG whose labels are not ECG, EOG,
    EMG, triggers, etc.; for files that type nothing as EEG, channels named like 10-05
    electrodes. No filtering is applied here (see [`nrtjax.eeg.io.filter_eeg`][]).

    **Arguments:**

    - `path`: the file (`.edf`, `.bdf`, `.gdf`, `.fif`, `.vhdr`, `.set`, ...).
    - `channels`: channel names to keep, matched by [`nrtjax.eeg.io.pick_channels`][]
        (montage-aware fallbacks); `None` keeps all EEG channels.
    - `min_fs`: lowest accepted sampling rate in Hz (default 90: the gamma band's top
        edge, 45 Hz, must lie below the Nyquist rate).
    - `min_duration`: shortest accepted recording in seconds.

    **Returns:** an [`nrtjax.eeg.io.EEGRecording`][] in volts.

    **Raises:** `FileNotFoundError` for a missing file; `EEGError` for an unreadable or
    empty file, no EEG channels, a sampling rate below `min_fs`, a too-short recording or
    NaN samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EEG file not found: {path}. Check the path (eeg=...).")
    if path.stat().st_size == 0:
        raise EEGError(f"EEG file {path} is empty (0 bytes). Give a recording.")
    raw = _read_raw(path)
    if raw.n_times == 0:
        raise EEGError(f"EEG file {path} contains no samples.")
    fs = float(raw.info["sfreq"])
    if fs < min_fs:
        raise EEGError(
            f"EEG file {path} is sampled at {fs:g} Hz; the bands (delta to gamma, up to "
            f"{TOP_BAND_HZ:g} Hz) need at least {min_fs:g} Hz. Use a recording sampled faster."
        )
    names = _eeg_channels(raw)
    if not names:
        raise EEGError(
            f"EEG file {path} has no EEG channels (channels: {raw.ch_names[:20]}). Type them "
            "as EEG in the file, or name them with 10-20 labels (Fp1, O2, ...)."
        )
    if channels is not None:
        mapping = pick_channels(names, channels)
        names = list(mapping.values())
    data = raw.get_data(picks=names).astype(np.float64)
    if data.shape[1] / fs < min_duration:
        raise EEGError(f"EEG file {path} is {data.shape[1] / fs:.2f} s long; at least "
                       f"{min_duration:g} s are needed for one analysis window.")
    if not np.all(np.isfinite(data)):
        ch, t = np.argwhere(~np.isfinite(data))[0]
        raise EEGError(f"EEG file {path} has NaN or inf samples (first in {names[ch]} at "
                       f"{t / fs:.3f} s). Repair or interpolate the recording.")
    # Onsets count from meas_date when the annotations carry one, else from the first sample.
    shift = raw.first_time if raw.annotations.orig_time is not None else 0.0
    ann = tuple((float(a["onset"]) - shift, float(a["duration"]), str(a["description"]))
                for a in raw.annotations)
    return EEGRecording(data, fs, tuple(names), str(path), ann)


def design_filter(fs: float, *, l_freq: float = 1.0, h_freq: float = TOP_BAND_HZ,
                  line_freq: float | None = 50.0, order: int = 4) -> np.ndarray:
    """Second-order sections of a causal Butterworth band-pass plus a line-noise notch.

    The band-pass keeps `l_freq`-`h_freq` Hz (`h_freq` lowered to 0.45 fs if needed);
    the notch (Q = 30) removes `line_freq` when it lies below the Nyquist rate.
    """
    nyq = fs / 2
    h = min(h_freq, 0.9 * nyq)
    if not 0 < l_freq < h:
        raise EEGError(f"Filter band {l_freq}-{h_freq} Hz is empty at fs={fs:g} Hz.")
    sos = scipy.signal.butter(order, [l_freq, h], btype="bandpass", fs=fs, output="sos")
    if line_freq is not None and line_freq < 0.98 * nyq:
        b, a = scipy.signal.iirnotch(line_freq, 30.0, fs=fs)
        sos = np.concatenate([sos, scipy.signal.tf2sos(b, a)])
    return sos


def filter_eeg(rec: EEGRecording, *, l_freq: float = 1.0, h_freq: float = TOP_BAND_HZ,
               line_freq: float | None = 50.0) -> EEGRecording:
    """Band-pass (default 1-45 Hz) and notch the line frequency, causally.

    Causal (`sosfilt`, not zero-phase) so that offline analysis and block streaming
    ([`nrtjax.eeg.stream`][]) give the same samples.
    """
    sos = design_filter(rec.fs, l_freq=l_freq, h_freq=h_freq, line_freq=line_freq)
    zi = scipy.signal.sosfilt_zi(sos)[:, None, :] * rec.data[None, :, :1]
    out, _ = scipy.signal.sosfilt(sos, rec.data, axis=-1, zi=zi)
    return dataclasses.replace(rec, data=out)


def to_raw(rec: EEGRecording):
    """The recording as an `mne.io.RawArray` (EEG channels, annotations, 10-05 montage
    positions for the channels that have one)."""
    import mne

    info = mne.create_info(list(rec.ch_names), rec.fs, ch_types="eeg", verbose="error")
    raw = mne.io.RawArray(rec.data, info, verbose="error")
    if rec.annotations:
        onset, dur, desc = zip(*rec.annotations)
        raw.set_annotations(mne.Annotations(onset, dur, desc))
    raw.set_montage(standard_montage(), on_missing="ignore", match_case=False, verbose="error")
    return raw


def write_eeg(rec: EEGRecording, path: str | os.PathLike) -> Path:
    """Write a recording as FIF (`*_raw.fif` / `*_eeg.fif`) or EDF (`.edf`), atomically.

    EDF stores 16-bit samples: the physical range is taken from the data, so the
    round trip is exact to about 1e-4 of the range. Annotations are kept in both formats.
    """
    import tempfile

    import mne

    path = Path(path)
    kind = "edf" if path.suffix.lower() == ".edf" else "fif" if path.suffix == ".fif" else None
    if kind is None:
        raise ValueError(f"Cannot write {path}: use a .fif or .edf file name.")
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = to_raw(rec)
    # A temporary directory beside the target keeps MNE's name checks happy and makes the
    # final os.replace atomic.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".eeg-") as tmp:
        tmp_path = Path(tmp) / path.name
        if kind == "fif":
            raw.save(tmp_path, overwrite=True, verbose="error")
        else:
            mne.export.export_raw(tmp_path, raw, fmt="edf", overwrite=True, verbose="error")
        os.replace(tmp_path, path)
    return path
