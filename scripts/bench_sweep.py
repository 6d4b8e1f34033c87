"""Members per second: `nrtjax sweep` vs a Python loop of `nrt.simulate` vs a multirun.

All three run the same GrFNN member (n oscillators, a metronome of `duration` s at `fs` Hz,
RK4 on the sample grid, `alpha` varied), measured in one run of this script:

1. `nrtjax sweep grid.alpha=linspace(...)`: one process, members vmapped and sharded over
   the local devices; wall clock of the whole command (start-up, compile, files included)
   and the job's own compute rate (metrics.json `members_per_second`).
   Also the same member function (experiments/sweep.py) through `nrt.sharded_vmap` in
   this process, warm (compiled before timing), for a like-for-like compute rate.
2. A Python loop of single `nrt.simulate` calls in this process, warm (compiled once
   before timing): the fastest a loop can be.
3. `nrtjax simulate -m model.alpha=a1,...,ak`: a Hydra multirun of single jobs (basic
   launcher, one process), wall clock.

    .venv/bin/python scripts/bench_sweep.py [--members 256] [--loop 16] [--multirun 4]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

import nrtjax as nrt

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "experiments._cli", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"command failed: nrtjax {' '.join(args)}\n{r.stderr[-3000:]}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--members", type=int, default=256, help="members of the sweep")
    p.add_argument("--loop", type=int, default=16, help="members run by the Python loop")
    p.add_argument("--multirun", type=int, default=4, help="jobs in the multirun")
    p.add_argument("--n", type=int, default=65, help="oscillators")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--fs", type=float, default=128.0)
    a = p.parse_args()
    common = [f"model.n={a.n}", "model.fmax=8", f"stimulus.duration={a.duration}",
              f"stimulus.fs={a.fs}", "wandb.mode=disabled"]
    print(f"GrFNN n={a.n}, {a.duration} s at {a.fs} Hz (RK4); {jax.device_count()} "
          f"{jax.devices()[0].platform} device(s)")

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep"
        wall = _cli("sweep", f"grid.alpha=linspace(-1,0.5,{a.members})",
                    f"chunk_size={a.members}", f"hydra.run.dir={out}", *common)
        metrics = json.loads((out / "metrics.json").read_text())
        sweep_wall = a.members / wall
        sweep_compute = metrics["members_per_second"]
        print(f"nrtjax sweep, {a.members} members:       {sweep_wall:9.2f} members/s wall "
              f"({wall:.1f} s); {sweep_compute:.2f} members/s in the job (compile included)")

        alphas = ",".join(f"{v:.4f}" for v in np.linspace(-1, 0.5, a.multirun))
        wall = _cli("simulate", "-m", f"model.alpha={alphas}", f"hydra.sweep.dir={tmp}/multi",
                    *common)
        multi = a.multirun / wall
        print(f"nrtjax simulate -m, {a.multirun} jobs:        {multi:9.2f} members/s wall "
              f"({wall:.1f} s)")

    freqs = nrt.log_freqs(0.5, 8.0, a.n)
    sig = nrt.metronome(2.0, a.duration, a.fs, amplitude=0.25)

    def one(alpha):
        return nrt.simulate(nrt.GrFNN(freqs, alpha=alpha), sig, dt=1 / a.fs,
                            throw=False).ys.block_until_ready()

    from experiments import sweep
    from experiments._groups import GrFNNConfig, MetronomeConfig
    from experiments._job import WandbConfig

    cfg = sweep.Config(model=GrFNNConfig(n=a.n, fmax=8.0), grid={"alpha": [0.0]},
                       stimulus=MetronomeConfig(duration=a.duration, fs=a.fs),
                       wandb=WandbConfig(mode="disabled"))
    evaluate = nrt.sharded_vmap(sweep.member_function(cfg, ["alpha"]))
    grid = {"alpha": np.linspace(-1, 0.5, a.members)}
    jax.block_until_ready(evaluate(grid))  # compile once
    start = time.perf_counter()
    jax.block_until_ready(evaluate(grid))
    warm = a.members / (time.perf_counter() - start)
    print(f"the sweep's members via sharded_vmap, warm: {warm:9.2f} members/s")

    one(0.0)  # compile once: the loop below is warm
    start = time.perf_counter()
    for alpha in np.linspace(-1, 0.5, a.loop):
        one(float(alpha))
    loop = a.loop / (time.perf_counter() - start)
    print(f"Python loop of nrt.simulate, {a.loop} members: {loop:9.2f} members/s (warm)")
    print(f"ratios: sweep/loop = {sweep_wall / loop:.2f}x (sweep command wall clock), "
          f"{sweep_compute / loop:.2f}x (in the job, compile included), {warm / loop:.2f}x "
          f"(both warm); sweep/multirun = {sweep_wall / multi:.1f}x wall, "
          f"{sweep_compute / multi:.1f}x in the job")


if __name__ == "__main__":
    main()
