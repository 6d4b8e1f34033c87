"""Check subjects of a `nrtjax fit_recovery` run that are off by more than 20 % and not
flagged: the loss at the truth against the fitted loss, and the profile at each true value
by a fine grid over the other parameter (400 log-spaced points, 0.25-20).

    .venv/bin/python scripts/fit_recovery_check.py RUN_DIR [SUBJECT ...]

Without subjects it checks those in `wrong_and_not_flagged` of fit_recovery_summary.json.
Lambda = n log(L / L_fit): negative means the fit missed a better optimum; above the
threshold of the identification level (10.83 at profile_level=0.999, the default; 3.84 at
0.95) means the profile interval at that level excludes the truth.
"""

import csv
import json
import sys
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import nrtjax as nrt
from nrtjax.fitting import data as fitdata, losses


def main(run: Path, subjects: list[str]) -> None:
    jax.config.update("jax_enable_x64", True)
    warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
    subjects = subjects or json.loads((run / "fit_recovery_summary.json").read_text())[
        "wrong_and_not_flagged"]
    with open(run / "fit_recovery.csv") as f:
        rows = {r["subject"]: r for r in csv.DictReader(f)}
    cohort = fitdata.read_taps(run / "cohort_taps.csv")
    last = float(jnp.max(jnp.where(cohort.data.mask, cohort.data.taps, 0.0)))
    res = losses.TapResiduals(duration=float(np.ceil(last + 1.0)))  # as nrtjax fit sets it
    grid = np.geomspace(0.25, 20.0, 400)
    for sub in subjects:
        r = rows[sub]
        truth = (float(r["lambda1_true"]), float(r["lambda2_true"]))
        fit = (float(r["lambda1_fit"]), float(r["lambda2_fit"]))
        datum = jax.tree.map(lambda x: x[cohort.subjects.index(sub)], cohort.data)

        @jax.jit
        def loss(l1, l2):
            res_, w = res(nrt.ASHLE(lambda1=l1, lambda2=l2), datum)
            return jnp.sum(w * res_**2) / jnp.sum(w), jnp.sum(w)

        l_fit, n = (float(v) for v in loss(*fit))
        l_true = float(loss(*truth)[0])
        print(f"{sub}: true ({truth[0]:.3g}, {truth[1]:.3g}), fitted ({fit[0]:.3g}, "
              f"{fit[1]:.3g}), n = {n:g}; loss at fit {l_fit:.2f}, at truth {l_true:.2f} "
              f"ms^2, Lambda(truth) = {n * np.log(l_true / l_fit):.2f}")
        for j, name in enumerate(("lambda1", "lambda2")):
            prof = [float(loss(truth[0], g)[0] if j == 0 else loss(g, truth[1])[0])
                    for g in grid]
            k = int(np.argmin(prof))
            print(f"  profile at true {name} = {truth[j]:.3g}: Lambda = "
                  f"{n * np.log(prof[k] / l_fit):.2f} (other parameter {grid[k]:.3g})")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
