"""Start-up time of the `nrtjax` command: help and a config error against importing JAX.

Whole-process wall times (start to exit, as a user waits for them), each command run
`--repeat` times interleaved with the others, medians reported; the baseline
`python -c "import jax"` is measured in the same run, on the same machine, so the ratios
hold when the machine is busy. `nrtjax NAME` is `python -m experiments._cli NAME` here (the
installed script runs the same code).

    python scripts/bench_startup.py [--repeat 7] [--json out.json] [--root CHECKOUT]

Target (issue 21): `nrtjax NAME --help` and a config error answer faster than
`import jax` alone, i.e. no job imports JAX, MNE, librosa or OpenCV before its config is
checked.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS = {
    "python -c 'import jax' (baseline)": ["-c", "import jax"],
    "nrtjax --help": ["-m", "experiments._cli", "--help"],
    "nrtjax simulate --help": ["-m", "experiments._cli", "simulate", "--help"],
    "nrtjax simulate model.eps=3 (config error)": ["-m", "experiments._cli", "simulate",
                                                   "model.eps=3"],
    "nrtjax eeg_duet block_s=0.013 (config error)": ["-m", "experiments._cli", "eeg_duet",
                                                     "block_s=0.013"],
    "nrtjax fit --help": ["-m", "experiments._cli", "fit", "--help"],
}


def time_once(args: list[str], root: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(root))
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=root, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout whose experiments/ to time (default: this one)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(args.repeat):
        for name, cmd in COMMANDS.items():
            times[name].append(time_once(cmd, args.root))
    base = statistics.median(times[next(iter(COMMANDS))])
    rows = {}
    print(f"{'command':<48} {'median s':>9} {'min s':>7} {'/ import jax':>13}")
    for name, ts in times.items():
        med = statistics.median(ts)
        rows[name] = {"median_s": med, "min_s": min(ts), "ratio_to_import_jax": med / base}
        print(f"{name:<48} {med:9.2f} {min(ts):7.2f} {med / base:13.2f}")
    if args.json:
        args.json.write_text(json.dumps({"repeat": args.repeat, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
