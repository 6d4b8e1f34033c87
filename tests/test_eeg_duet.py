"""`nrtjax eeg_duet`: the file contract of docs/duets.md, for the twin and a file."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import jax.random as jr
import numpy as np
import soundfile as sf

from nrtjax.eeg import io, twin

FAST = ["sr=8000", "train_seconds=10", "twin_baseline_s=10", "train_subjects=1",
        "wandb.mode=disabled"]


def _run(capsys, *overrides) -> tuple[int, str]:
    """Run `nrtjax eeg_duet overrides...` as a user would (a subprocess); returns
    (exit code, output)."""
    del capsys
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "experiments._cli", "eeg_duet", *overrides],
                          capture_output=True, text=True, cwd=root, timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


def _check_stem(out: Path, stem: str, seconds: float):
    audio, sr = sf.read(out / f"{stem}_duet.wav")
    assert sr == 8000 and abs(len(audio) / sr - seconds) < 0.3
    with open(out / f"{stem}_biomarkers.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_s", "engagement", "relaxation", "stress", "attention"]
    vals = np.array(rows[1:], dtype=float)
    assert np.all(np.isfinite(vals)) and np.all(vals[:, 1:] > 0)
    with open(out / f"{stem}_params.csv") as f:
        header = next(csv.reader(f))
    assert header[:5] == ["time_s", "tempo_bpm", "lambda1", "lambda2", "rho"]
    assert (out / f"{stem}_dashboard.png").stat().st_size > 10_000


def test_twin_run_writes_every_state_and_the_metrics(tmp_path, capsys):
    out = tmp_path / "twin"
    code, text = _run(capsys, f"out={out}", "twin_seconds=4", *FAST)
    assert code == 0, text[-2000:]
    for state in twin.STATES:
        _check_stem(out, f"twin_{state}", 4.0)
        assert io.load_eeg(out / f"twin_{state}_raw.fif").ch_names == twin.EPOC_CHANNELS
    m = json.loads((out / "metrics.json").read_text())
    for k in ("latency_ms_p50", "latency_ms_p99", "realtime_factor", "window_accuracy"):
        assert isinstance(m[k], float), k
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (5, 5) and cm.sum() == 5 * 5         # 5 windows of 2 s per 4 s state
    assert m["window_accuracy"] == np.trace(cm) / cm.sum()
    assert m["states"] == list(twin.STATES) and set(m["directions_ok"]) == set(twin.STATES)


def test_file_run_with_a_bad_channel_and_clear_errors(tmp_path, capsys):
    rec = twin.simulate_twin(["neutral", "relaxed_awake"], seconds=5.0, key=jr.key(50))
    data = rec.data.copy()
    data[twin.EPOC_CHANNELS.index("P7")] = 0.0
    path = io.write_eeg(io.EEGRecording(data, rec.fs, rec.ch_names), tmp_path / "sub01.edf")
    out = tmp_path / "file"
    code, text = _run(capsys, f"eeg={path}", f"out={out}", "baseline_s=4", *FAST)
    assert code == 0, text[-2000:]
    assert "P7: flat" in text
    _check_stem(out, "sub01", 10.0)
    m = json.loads((out / "metrics.json").read_text())
    assert list(m["bad_channels"]) == ["P7"] and len(m["channels"]) == 13
    assert m["latency_ms_p99"] >= m["latency_ms_p50"] > 0

    (tmp_path / "junk.bdf").write_bytes(b"not an eeg file" * 50)
    code, text = _run(capsys, f"eeg={tmp_path / 'junk.bdf'}", f"out={tmp_path / 'bad'}", *FAST)
    assert code == 1 and "Cannot read EEG file" in text
    code, text = _run(capsys, "block_s=-1", f"out={tmp_path / 'bad'}", *FAST)
    assert code == 2 and "block_s=-1" in text
