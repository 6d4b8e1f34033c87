"""`nrtjax fit`: both CSV formats end to end, small; bad input and config fail clearly."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ._ashle_numpy import peak_taps, simulate_ashle
from .test_fit_data import IMPLAUSIBLE

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, *overrides):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # out= is the run folder (config.json and metrics.json go there too); without it,
    # a run folder under tmp_path.
    if not any(o.startswith("out=") for o in overrides):
        overrides = (*overrides, f"out={tmp_path / 'run'}")
    cmd = [sys.executable, "-m", "experiments._cli", "fit", "wandb.mode=disabled", *overrides]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_fit_job_taps(tmp_path):
    ts, z = simulate_ashle(5.0, 2.0, 2.0, np.array([0.4, np.nan]), duration=6.0)
    path = tmp_path / "taps.csv"
    with open(path, "w") as f:
        f.write("subject,trial,smt_ms,period_ms,tap_s\n")
        for j, period in enumerate(("400", "")):
            for t in peak_taps(ts, np.real(z[:, j])):
                if t > 2.0:
                    f.write(f"p1,t{j},500,{period},{t:.4f}\n")
    out = tmp_path / "out"
    proc = _run(tmp_path, f"taps={path}", f"out={out}", "steps=3", "restarts=1", "starts=4")
    assert proc.returncode == 0, proc.stderr
    rows = _read(out / "fitted_params.csv")
    assert list(rows[0]) == [
        "subject", "lambda1", "lambda2", "gamma", "loss", "lambda1_se", "lambda2_se",
        "converged", "plateau", "newton_step", "grad_norm", "n_at_best", "restarts",
        "steps_run", "lambda1_identified", "lambda1_lr_low", "lambda1_lr_high",
        "lambda2_identified", "lambda2_lr_low", "lambda2_lr_high"]
    assert rows[0]["lambda1_identified"] in ("yes", "no") and rows[0]["restarts"] == "1"
    metrics = json.loads((out / "metrics.json").read_text())  # out= is the run folder
    assert set(metrics["subjects"]["p1"]) >= {"converged", "n_at_best", "newton_step",
                                              "lambda1_identified"}
    assert rows[0]["subject"] == "p1" and float(rows[0]["gamma"]) == 0.02
    for name in ("fit_vs_data.png", "fit_vs_data.csv", "loss_curves.png", "loss_curves.csv",
                 "identifiability.json"):
        assert (out / name).stat().st_size > 0
    sources = {r["source"] for r in _read(out / "fit_vs_data.csv")}
    assert sources == {"data", "model"}
    report = json.loads((out / "identifiability.json").read_text())
    assert len(report["p1"]["directions"]) == 2


def test_fit_job_summary_states_the_ratio(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_text("subject,smt_ms,period_ratio,asynchrony_ms\n"
                    "g,500,0.7,10.5\ng,500,1.3,-6.5\n")
    out = tmp_path / "out"
    proc = _run(tmp_path, f"summary={path}", f"out={out}", "steps=2", "restarts=1",
                "starts=4", "duration=6", "window=2")
    assert proc.returncode == 0, proc.stderr
    assert "only through lambda2/lambda1" in proc.stdout
    row = _read(out / "fitted_params.csv")[0]
    assert float(row["lambda1"]) == 4.0 and "lambda1_se" not in row and "lambda2_se" in row
    assert float(row["lambda2_over_lambda1"]) == float(row["lambda2"]) / 4.0
    report = json.loads((out / "identifiability.json").read_text())
    assert "ratio" in report["note"] and len(report["pair_check"]["directions"]) == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["rmse_ms"]) == len(metrics["rmse_reference_ms"]) == 1


def test_fit_job_malformed_csv_names_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("subject,trial,smt_ms,period_ms,tap_s\ns,a,500,400,0.5\ns,a,500,400,x\n")
    proc = _run(tmp_path, f"taps={path}", f"out={tmp_path / 'out'}")
    assert proc.returncode == 1
    assert "line 3, column tap_s: 'x' is not a number" in proc.stderr
    assert not (tmp_path / "out" / "fitted_params.csv").exists()


def test_fit_job_needs_exactly_one_input(tmp_path):
    proc = _run(tmp_path)
    assert proc.returncode == 2 and "exactly one of taps=PATH or summary=PATH" in proc.stderr


@pytest.mark.parametrize("case", sorted(IMPLAUSIBLE))
def test_fit_job_refuses_implausible_taps(tmp_path, case):
    """Each bad input, as a user runs it: exit 1, one error line naming the file, line and
    problem, nothing in out."""
    text, match = IMPLAUSIBLE[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text)
    out = tmp_path / "out"
    proc = _run(tmp_path, f"taps={path}", f"out={out}")
    assert proc.returncode == 1, proc.stderr
    assert f"nrtjax fit: error: {path}" in proc.stderr
    assert re.search(match, proc.stderr), proc.stderr
    assert not out.exists()
