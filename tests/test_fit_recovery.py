"""`nrtjax fit_recovery`, small: an independent cohort written as a taps CSV, fitted by
the `nrtjax fit` code path, scored against the truth it was drawn from."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from nrtjax.fitting import data as fitdata

ROOT = Path(__file__).resolve().parent.parent


def test_fit_recovery_job_small(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "experiments._cli", "fit_recovery", "wandb.mode=disabled",
           f"hydra.run.dir={tmp_path / 'run'}", f"out={out}", "n_subjects=2", "starts=8",
           "restarts=1", "steps=4", "trial_s=5", "late_start_s=[1,2]", "data_fs=1000"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    with open(out / "cohort_truth.csv") as f:
        truth = list(csv.DictReader(f))
    with open(out / "fit_recovery.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["subject"] for r in rows] == [t["subject"] for t in truth] == ["sub000", "sub001"]
    for r, t in zip(rows, truth):
        assert float(r["lambda1_true"]) == float(t["lambda1"])
        assert 1.0 <= float(t["lambda1"]) <= 10.0 and 0.5 <= float(t["lambda2"]) <= 4.0
        rel = float(r["lambda1_fit"]) / float(r["lambda1_true"]) - 1
        assert np.isclose(float(r["lambda1_rel_error"]), rel)
        assert r["lambda1_within_20"] == ("yes" if abs(rel) <= 0.2 else "no")
    # The data file is the taps format that nrtjax fit reads (and passes its checks).
    cohort = fitdata.read_taps(out / "cohort_taps.csv")
    assert cohort.subjects == ["sub000", "sub001"]
    summary = json.loads((out / "fit_recovery_summary.json").read_text())
    assert summary["n_subjects"] == 2 and "not_identified_by_factor" in summary
    for name in ("fit_recovery_true_vs_fitted.png", "fit_recovery_heatmaps.png",
                 "fit_recovery_grid.csv", "fit_recovery_table.md", "fit/fitted_params.csv"):
        assert (out / name).stat().st_size > 0
