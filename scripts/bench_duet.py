"""Per-block latency of the neural duet engine, as the EEG and video duets stream it.

    .venv/bin/python scripts/bench_duet.py [--block 0.25] [--seconds 60] [--sr 44100]

Streams `seconds` of duet in blocks with parameters that change every block (as the EEG
mapping does), after one warm-up block (the compile), and prints the per-block compute
time (p50, p99, max), the part spent in the jitted simulation, and the ratios against the
two budgets measured in the same run: the 50 ms p99 target of docs/benchmarks.md and the
block's own duration (real time).
"""

import argparse
import time

import jax
import numpy as np

from nrtjax._dtypes import complex_dtype
from nrtjax.audio import _duet_sim
from nrtjax.audio.duet import DuetEngine, DuetParams


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--block", type=float, default=0.25)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--sr", type=int, default=44100)
    args = ap.parse_args()
    engine = DuetEngine(sr=args.sr, seed=0)
    n_blocks = int(round(args.seconds / args.block))
    params = DuetParams()
    state = engine.init(params)
    t0 = time.perf_counter()
    _, state, _ = engine.process_block(state, params, args.block)
    compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    total, sim = [], []
    for _ in range(n_blocks):
        params = params.replace(rho=float(rng.uniform(15, 30)), lambda2=float(rng.uniform(0.5, 3)),
                                tempo_bpm=float(rng.uniform(90, 130)))
        t0 = time.perf_counter()
        _, state, _ = engine.process_block(state, params, args.block)
        total.append(time.perf_counter() - t0)
    # the jitted simulation alone, on the same block length
    sp = _duet_sim.sim_params_from(params.sim_values(), engine.dtype)
    x = np.zeros(engine.block_steps(args.block), complex_dtype(engine.dtype))
    freqs = np.asarray(engine.freqs, engine.dtype)
    s = state.sim
    for _ in range(n_blocks):
        t0 = time.perf_counter()
        s, tr = _duet_sim.advance(s, sp, x, freqs, engine.fs_sim)
        jax.block_until_ready(tr)
        sim.append(time.perf_counter() - t0)
    total, sim = 1e3 * np.asarray(total), 1e3 * np.asarray(sim)
    p50, p99 = np.median(total), np.percentile(total, 99)
    print(f"duet engine, {n_blocks} blocks of {args.block} s at sr={args.sr}, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s); compile {compile_s:.1f} s")
    print(f"per block: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {total.max():.1f} ms; "
          f"jitted simulation alone p50 {np.median(sim):.2f} ms, "
          f"p99 {np.percentile(sim, 99):.2f} ms")
    print(f"p99 / 50 ms target = {p99 / 50:.2f} (< 1 passes); "
          f"real-time factor (block / mean compute) = {1e3 * args.block / total.mean():.1f}x")


if __name__ == "__main__":
    main()
