"""Benchmark of fitting ASHLE by gradient, all ratios measured in this one run.

1. One gradient of the tap-time loss (4 metronome trials of DURATION s, forward Euler at
   500 Hz, vmapped) relative to one forward evaluation of the same loss, for the
   gradient paths nrt.simulate offers: the fast path (lax.scan, plain reverse mode) and
   diffrax.diffeqsolve with RecursiveCheckpointAdjoint (default checkpoints, and one
   checkpoint per step). Target: <= 4x.
2. A cohort fit of N subjects (one compiled, vmapped program) against N sequential
   single-subject fits (compiled once, reused), both warm, with the fit of `nrtjax fit`:
   a global Sobol design of --starts points, the best --restarts refined by
   Levenberg-Marquardt for --steps iterations (by default patience = steps: every run
   does the same work), taps read from RK4 at 125 Hz. With --patience P each run stops
   after P iterations without gain, as in `nrtjax fit` (--steps 30 --patience 3): the
   vmapped cohort's loop then runs until its slowest start stops, each sequential fit
   until its own does. Each timing prints the load average before and after it, since a
   change of load between the two timings changes their ratio.

    .venv/bin/python scripts/bench_fit.py [--subjects 64] [--steps 10] [--duration 20]
        [--starts 32] [--restarts 1] [--patience P]
"""

import argparse
import os
import time
import warnings

import diffrax
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import nrtjax as nrt
from nrtjax.fitting import losses

FS = 500.0
PERIODS = np.array([0.7, 0.85, 1.15, 1.3]) * 0.5


def synthetic_cohort(n: int, duration: float, seed: int = 0) -> losses.TapData:
    """Taps of n subjects (lambda1, lambda2 uniform in [1, 8]) read off nrtjax's own
    simulation: the benchmark times the fit, not the data."""
    rng = np.random.default_rng(seed)
    lam = rng.uniform(1, 8, (n, 2))
    sim = jax.jit(jax.vmap(jax.vmap(
        lambda l1, l2, p: losses.simulate_trial(nrt.ASHLE(lambda1=l1, lambda2=l2), p,
                                                duration=duration, fs=FS)[1].z,
        in_axes=(None, None, 0)), in_axes=(0, 0, None)))
    z = np.asarray(sim(jnp.asarray(lam[:, 0]), jnp.asarray(lam[:, 1]), jnp.asarray(PERIODS)))
    ts = np.arange(z.shape[-1]) / FS
    taps = [[nrt.analysis.phase_crossings(ts, np.angle(z[i, j])) for j in range(4)]
            for i in range(n)]
    k = min(len(t[t > 3.0]) for row in taps for t in row)
    arr = np.stack([np.stack([t[t > 3.0][:k] for t in row]) for row in taps])
    arr = arr + rng.normal(0, 0.004, arr.shape)
    return losses.TapData(jnp.full((n,), 0.5), jnp.asarray(np.broadcast_to(PERIODS, (n, 4)).copy()),
                          jnp.asarray(arr), jnp.ones(arr.shape, bool))


def timed(fn, *args, repeat: int = 3) -> float:
    jax.block_until_ready(fn(*args))
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def gradient_cost(data: losses.TapData, duration: float) -> None:
    datum = jax.tree.map(lambda x: x[0], data)
    n_steps = int(round(duration * FS))
    paths = {
        "fast path (lax.scan, reverse mode)": None,
        "RecursiveCheckpointAdjoint()": diffrax.RecursiveCheckpointAdjoint(),
        f"RecursiveCheckpointAdjoint(checkpoints={n_steps})":
            diffrax.RecursiveCheckpointAdjoint(checkpoints=n_steps),
    }

    def loss_for(adjoint):
        res = losses.TapResiduals(duration=duration, fs=FS, adjoint=adjoint)

        def loss(theta):
            r, w = res(nrt.ASHLE(lambda1=theta[0], lambda2=theta[1], f0=2.0), datum)
            return jnp.sum(w * r**2) / jnp.sum(w)
        return loss

    theta = jnp.asarray([4.0, 2.0])
    forward = timed(jax.jit(loss_for(None)), theta)
    print(f"[1] one forward loss (4 trials x {duration:g} s, Euler 500 Hz): {1e3 * forward:.1f} ms")
    for name, adjoint in paths.items():
        g = timed(jax.jit(jax.grad(loss_for(adjoint))), theta)
        print(f"    gradient, {name}: {1e3 * g:.1f} ms = {g / forward:.2f}x forward")


def _load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def cohort_vs_sequential(data: losses.TapData, duration: float, steps: int, starts: int,
                         restarts: int, patience: int | None = None) -> None:
    n = data.smt.shape[0]
    res = losses.TapResiduals(duration=duration)
    # patience=None: every run takes all `steps` (no relative gain asked for, rtol=0).
    stop = (dict(patience=steps, rtol=0.0) if patience is None
            else dict(patience=patience, rtol=1e-4))
    kw = dict(params=("lambda1", "lambda2"), restarts=restarts, steps=steps, method="lm",
              starts=starts, start_ranges={"lambda1": (0.5, 20.0), "lambda2": (0.25, 8.0)},
              **stop)
    def fit(d, key):
        return nrt.fit(nrt.ASHLE(), res, d, key=key, **kw)
    def one(i):
        return jax.tree.map(lambda x: x[i:i + 1], data)
    jax.block_until_ready(fit(data, jr.key(0)).params)  # compile both programs first
    jax.block_until_ready(fit(one(0), jr.key(0)).params)
    load = [_load()]
    t = time.perf_counter()
    cohort_steps = np.asarray(jax.block_until_ready(fit(data, jr.key(1))).steps_run)
    cohort = time.perf_counter() - t
    load.append(_load())
    t = time.perf_counter()
    seq_steps = [int(jax.block_until_ready(fit(one(i), jr.key(1))).steps_run[0])
                 for i in range(n)]
    seq = time.perf_counter() - t
    load.append(_load())
    what = ("every run all of them" if patience is None
            else f"stop after {patience} without gain")
    print(f"[2] {n}-subject cohort fit ({starts} design points, {restarts} start(s) x up to "
          f"{steps} LM iterations, {what}; 4 trials x {duration:g} s each): "
          f"{cohort:.1f} s; {n} sequential fits: {seq:.1f} s; speed-up {seq / cohort:.1f}x")
    print(f"    LM iterations of the best start per subject: cohort mean "
          f"{cohort_steps.mean():.1f}, max {cohort_steps.max()}; sequential mean "
          f"{np.mean(seq_steps):.1f}, max {max(seq_steps)}")
    print(f"    load average (1/5/15 min) before the cohort {load[0]}, between {load[1]}, "
          f"after the sequential fits {load[2]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--starts", type=int, default=32)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--patience", type=int, default=None,
                        help="stop a run after this many LM iterations without gain "
                             "(default: none, every run takes --steps)")
    parser.add_argument("--skip-cohort", action="store_true")
    parser.add_argument("--skip-gradient", action="store_true")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
    print(f"devices: {jax.devices()}")
    data = synthetic_cohort(args.subjects, args.duration)
    if not args.skip_gradient:
        gradient_cost(data, args.duration)
    if not args.skip_cohort:
        cohort_vs_sequential(data, args.duration, args.steps, args.starts, args.restarts,
                             args.patience)


if __name__ == "__main__":
    main()
