"""Build the ablation table of docs/surrogate.md from train_surrogate runs' metrics.json files.

usage: .venv/bin/python scripts/ablation_table.py multirun/train_surrogate/DATE_TIME [...]
Prints a Markdown table: one row per ablation, mean +- std over seeds of each metric.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

COLUMNS = [("tracking_plv_mean", "tracking PLV (mean)"), ("tracking_plv_min", "tracking PLV (min)"),
           ("plv_retention_median", "PLV retention (median)"), ("freq_mae_hz_mean", "freq MAE (Hz)"),
           ("freq_r", "freq r (pooled)"), ("amp_r_pooled", "amp r (pooled)")]
ORDER = ["full", "no_plv", "no_freq", "mse_only"]


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    runs = defaultdict(list)
    for root in argv:
        for path in sorted(Path(root).rglob("metrics.json")):
            m = json.loads(path.read_text())
            if "ablation" in m:
                m["plv_retention_median"] = float(np.median(m["plv_retention_per_song"]))
                runs[m["ablation"]].append(m)
    if not runs:
        sys.exit(f"No train_surrogate metrics.json under {argv}.")
    head = "| ablation | seeds | steps | " + " | ".join(c for _, c in COLUMNS) + " |"
    print(head)
    print("|" + "---|" * (3 + len(COLUMNS)))
    for name in sorted(runs, key=lambda n: ORDER.index(n) if n in ORDER else 99):
        ms = runs[name]
        cells = []
        for key, _ in COLUMNS:
            v = np.array([m[key] for m in ms if m.get(key) is not None], dtype=float)
            cells.append(f"{v.mean():.4f} ± {v.std():.4f}" if len(v) > 1 else f"{v.mean():.4f}")
        steps = sorted({m.get("steps") for m in ms})
        print(f"| {name} | {len(ms)} | {','.join(map(str, steps))} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
