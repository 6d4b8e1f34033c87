"""The held-out cohort of issue 20, scored once per shipped version of the fit.

Five subjects, (lambda1, lambda2) = (4, 2), (6, 1.5), (8, 2.5) and two drawn log-uniform in
[1, 10] x [0.5, 4], SMTs drawn in 350-650 ms, four metronome rates 0.7, 0.9, 1.1, 1.3 x SMT,
15 s trials, taps from trial start, 4 ms jitter, from the independent NumPy reference
(nrtjax.fitting.synthetic, RK4 at 2 kHz; seed 20261202, never used while developing).

    .venv/bin/python scripts/fit_heldout.py make DIR     # writes DIR/taps.csv, DIR/truth.json
    nrtjax fit taps=DIR/taps.csv out=DIR/out
    .venv/bin/python scripts/fit_heldout.py score DIR    # prints the table
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np

from nrtjax.fitting import synthetic

SEED = 20261202


def make(d: Path) -> None:
    rng = np.random.default_rng(SEED)
    lams = [(4.0, 2.0), (6.0, 1.5), (8.0, 2.5)] + [
        tuple(np.round(np.exp(rng.uniform(np.log([1, 0.5]), np.log([10, 4]))), 3))
        for _ in range(2)]
    smts = np.round(rng.uniform(350, 650, 5), 1)
    subs = [{"subject": f"h{i}", "lambda1": float(l1), "lambda2": float(l2),
             "smt_ms": float(smt), "periods_ms": [round(float(r * smt), 1)
                                                  for r in (0.7, 0.9, 1.1, 1.3)],
             "jitter_ms": 4.0, "start_s": 0.0} for i, ((l1, l2), smt) in enumerate(zip(lams, smts))]
    cohort = synthetic.simulate_cohort(subs, duration=15.0, fs=2000.0, seed=SEED)
    d.mkdir(parents=True, exist_ok=True)
    synthetic.write_taps_csv(d / "taps.csv", cohort)
    (d / "truth.json").write_text(json.dumps(subs, indent=1))


def score(d: Path) -> None:
    truth = json.loads((d / "truth.json").read_text())
    with open(d / "out" / "fitted_params.csv") as f:
        rows = list(csv.DictReader(f))
    print("| subject | SMT ms | true | fitted | lambda1 error | lambda2 error | identified | "
          "converged | restarts at best |\n|---|---|---|---|---|---|---|---|---|")
    ok = 0
    for t, r in zip(truth, rows):
        e1 = float(r["lambda1"]) / t["lambda1"] - 1
        e2 = float(r["lambda2"]) / t["lambda2"] - 1
        ok += abs(e1) <= 0.2 and abs(e2) <= 0.2
        print(f"| {t['subject']} | {t['smt_ms']:g} | ({t['lambda1']:g}, {t['lambda2']:g}) | "
              f"({float(r['lambda1']):.3g}, {float(r['lambda2']):.3g}) | {100 * e1:+.1f} % | "
              f"{100 * e2:+.1f} % | {r['lambda1_identified']}/{r['lambda2_identified']} | "
              f"{r['converged']} | {r['n_at_best']}/{r['restarts']} |")
    print(f"{ok} of {len(rows)} within 20 % on both parameters")


if __name__ == "__main__":
    {"make": make, "score": score}[sys.argv[1]](Path(sys.argv[2]))
