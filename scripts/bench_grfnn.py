"""Benchmark: nrtjax GrFNN simulation against the NumPy loops a researcher would write.

Cases (targets in docs/benchmarks.md), all measured in this one run so the ratios are fair:
 1. one 289-oscillator GrFNN (0.25-16 Hz, log), 60 s at 256 Hz, RK4, full trajectory:
    nrt.simulate (fast path), nrt.simulate through diffeqsolve, and a NumPy RK4 loop;
 2. a 256-member sweep over alpha (mean amplitude over the last 30 s per member):
    jax.vmap of nrt.simulate vs the NumPy loop run member by member (timed on a few members
    and scaled linearly, stated in the output) vs NumPy vectorised over members; the sweep
    runs through nrt.sharded_vmap, and once more as a plain jax.jit(jax.vmap(...));
 3. jax.grad of a loss on the 60 s run vs the forward run (w.r.t. alpha; then w.r.t. all 8
    parameters, also through diffeqsolve's RecursiveCheckpointAdjoint for comparison), each
    jitted with compiler_options=nrt.CPU_COMPILER_OPTIONS as docs/simulate.md recommends.
Timings are warm (compiled once before timing), best of `--repeats` for nrtjax and the NumPy
loops alike (the vectorised NumPy sweep, about a minute, is timed once).

The script runs as the `nrtjax` command does: it first re-executes itself with glibc's malloc on
transparent huge pages where that helps (`experiments/_env.py`; NumPy uses huge pages for its
large arrays either way). `--no-malloc-hugepages` measures the process as started instead.

    .venv/bin/python scripts/bench_grfnn.py [--duration 60] [--members 256] [--repeats 3]
"""

import argparse
import os
import sys
import time

from experiments._env import HUGEPAGE_TUNABLE, reexec_with_malloc_hugepages

if __name__ == "__main__" and "--no-malloc-hugepages" not in sys.argv:
    reexec_with_malloc_hugepages()

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import nrtjax as nrt


def best_time(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


def numpy_rk4(freqs, alpha, xs, fs, *, save_every_step=True, tail_from=None):
    """A NumPy RK4 loop over time, vectorised over oscillators (and over members if
    `alpha` is a column vector): the canonical model with beta1 = beta2 = -1, eps = 1."""
    a = (alpha + 2j * np.pi) * freqs
    b = -freqs
    z = np.full(np.broadcast(a, freqs).shape, 0.01 + 0j)
    h = 1.0 / fs

    def f(z, x):
        r2 = (z * z.conj()).real
        return z * (a + b * r2 + b * r2 * r2 / (1 - r2)) + freqs * x

    out = [z] if save_every_step else None
    acc = np.zeros(z.shape)
    for k in range(len(xs) - 1):
        xm = 0.5 * (xs[k] + xs[k + 1])
        k1 = f(z, xs[k])
        k2 = f(z + 0.5 * h * k1, xm)
        k3 = f(z + 0.5 * h * k2, xm)
        k4 = f(z + h * k3, xs[k + 1])
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if save_every_step:
            out.append(z)
        elif k + 1 >= tail_from:
            acc += np.abs(z)
    return np.stack(out) if save_every_step else acc / (len(xs) - tail_from)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--fs", type=float, default=256.0)
    p.add_argument("--n", type=int, default=289)
    p.add_argument("--members", type=int, default=256)
    p.add_argument("--loop-members", type=int, default=8, help="members timed for the per-member NumPy loop")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=str, default=None, help="also write the results here")
    p.add_argument("--no-malloc-hugepages", action="store_true",
                   help="do not re-run with glibc.malloc.hugetlb=1 (measure the process as started)")
    args = p.parse_args()
    jax.config.update("jax_enable_x64", True)

    freqs = nrt.log_freqs(0.25, 16.0, args.n)
    beat = 2.0
    onsets = np.arange(0.0, args.duration, 1 / beat)
    sig = nrt.pulse_train(onsets, args.duration, args.fs, velocities=np.where(np.arange(onsets.size) % 4 == 0, 1.0, 0.6))
    xs = np.asarray(sig.xs)
    dt = 1 / args.fs
    steps = xs.size - 1
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    res = {"device": str(jax.devices()[0]), "steps": steps, "oscillators": args.n,
           "malloc_hugepages": f"{HUGEPAGE_TUNABLE}=1" in tunables}
    print(f"device: {res['device']}; {args.n} oscillators, {steps} RK4 steps ({args.duration:g} s at {args.fs:g} Hz); "
          f"GLIBC_TUNABLES={tunables or '(unset)'}")

    # 1. one network, full trajectory.
    net = nrt.GrFNN(freqs, alpha=-0.1, beta1=-1.0, beta2=-1.0, eps=1.0)
    def fast():
        return nrt.simulate(net, sig, dt=dt).ys
    def slow():
        return nrt.simulate(net, sig, dt=dt, adjoint=diffrax.RecursiveCheckpointAdjoint()).ys
    ref = numpy_rk4(freqs, -0.1, xs, args.fs)
    err = float(np.max(np.abs(np.asarray(fast()) - ref)))
    t_np = best_time(lambda: numpy_rk4(freqs, -0.1, xs, args.fs), args.repeats)
    t_fast = best_time(fast, args.repeats)
    t_slow = best_time(slow, args.repeats)
    res.update(single_numpy_s=t_np, single_fast_s=t_fast, single_diffeqsolve_s=t_slow,
               single_speedup=t_np / t_fast, single_speedup_diffeqsolve=t_np / t_slow, max_abs_diff_vs_numpy=err)
    print(f"[1] NumPy loop {t_np:.3f} s | nrt.simulate {t_fast:.3f} s ({t_np / t_fast:.1f}x, target >= 10x) | "
          f"via diffeqsolve {t_slow:.3f} s ({t_np / t_slow:.1f}x) | max |diff| vs NumPy {err:.1e}")

    # 2. sweep over alpha: mean amplitude over the second half, saved once per second.
    alphas = np.linspace(-1.0, 0.2, args.members)
    half = steps // 2
    save = np.arange(half, steps + 1, int(args.fs)) * dt

    def one(a):
        ys = nrt.simulate(nrt.GrFNN(freqs, alpha=a, beta1=-1.0, beta2=-1.0, eps=1.0), sig, dt=dt,
                          saveat=save, throw=False).ys
        return jnp.mean(jnp.abs(ys), axis=0)

    # nrt.sharded_vmap (the sweep job's path) compiles with nrt.CPU_COMPILER_OPTIONS; a plain
    # jax.jit of jax.vmap compiles with XLA's defaults unless given them, as docs/simulate.md says.
    sweep = nrt.sharded_vmap(one)
    sweep_plain = jax.jit(jax.vmap(one))
    t_sweep = best_time(lambda: sweep(jnp.asarray(alphas)), args.repeats)
    t_sweep_plain = best_time(lambda: sweep_plain(jnp.asarray(alphas)), args.repeats)
    k = args.loop_members
    t_loop = best_time(lambda: [numpy_rk4(freqs, a, xs, args.fs, save_every_step=False, tail_from=half)
                                for a in alphas[:k]], args.repeats) * args.members / k
    t_vec = best_time(lambda: numpy_rk4(freqs, alphas[:, None], xs, args.fs, save_every_step=False,
                                        tail_from=half), 1)
    res.update(sweep_members=args.members, sweep_jax_s=t_sweep, sweep_numpy_loop_s=t_loop,
               sweep_numpy_vectorised_s=t_vec, sweep_speedup_vs_loop=t_loop / t_sweep,
               sweep_speedup_vs_vectorised=t_vec / t_sweep, loop_members_timed=k,
               sweep_plain_jit_s=t_sweep_plain, sweep_plain_speedup_vs_loop=t_loop / t_sweep_plain)
    print(f"[2] {args.members}-member sweep: nrt.sharded_vmap {t_sweep:.2f} s | NumPy member by member "
          f"{t_loop:.1f} s (timed on {k}, scaled) -> {t_loop / t_sweep:.1f}x (target >= 30x) | NumPy "
          f"vectorised {t_vec:.2f} s -> {t_vec / t_sweep:.2f}x (target > 1x) | plain jax.jit(jax.vmap) "
          f"{t_sweep_plain:.2f} s -> {t_loop / t_sweep_plain:.1f}x")

    # 3. gradient through the 60 s run.
    def loss_net(m, adjoint=None):
        ys = nrt.simulate(m, sig, dt=dt, adjoint=adjoint).ys
        return jnp.mean(jnp.abs(ys[half:]) ** 2)

    def loss(a):
        return loss_net(nrt.GrFNN(freqs, alpha=a, beta1=-1.0, beta2=-1.0, eps=1.0))

    fwd = jax.jit(loss, compiler_options=nrt.CPU_COMPILER_OPTIONS)
    grad = jax.jit(jax.grad(loss), compiler_options=nrt.CPU_COMPILER_OPTIONS)
    t_fwd = best_time(lambda: fwd(-0.1), args.repeats)
    t_grad = best_time(lambda: grad(-0.1), args.repeats)
    res.update(forward_s=t_fwd, grad_s=t_grad, grad_over_forward=t_grad / t_fwd)
    print(f"[3] forward {t_fwd:.3f} s | grad {t_grad:.3f} s -> {t_grad / t_fwd:.2f}x the forward (target <= 4x)")

    # 3b. the same loss differentiated w.r.t. every parameter of the layer (8 leaves), and
    # through diffeqsolve (RecursiveCheckpointAdjoint) instead of the fast path's RK4 adjoint.
    net_all = nrt.GrFNN(freqs, alpha=-0.1, beta1=-1.0, beta2=-1.0, delta1=0.1, eps=0.9)
    opts = nrt.CPU_COMPILER_OPTIONS
    grad_all = eqx.filter_jit(eqx.filter_grad(loss_net), compiler_options=opts)
    grad_rm = eqx.filter_jit(eqx.filter_grad(lambda m: loss_net(m, diffrax.RecursiveCheckpointAdjoint())),
                             compiler_options=opts)
    t_all = best_time(lambda: grad_all(net_all), args.repeats)
    t_rm = best_time(lambda: grad_rm(net_all), args.repeats)
    res.update(grad_all_params_s=t_all, grad_all_params_over_forward=t_all / t_fwd,
               grad_all_params_diffeqsolve_s=t_rm)
    print(f"[3b] grad w.r.t. all 8 GrFNN parameters {t_all:.3f} s ({t_all / t_fwd:.2f}x the forward) | "
          f"the same through diffeqsolve (RecursiveCheckpointAdjoint) {t_rm:.3f} s ({t_rm / t_fwd:.2f}x)")
    if args.json:
        nrt.io.write_json(args.json, res)


if __name__ == "__main__":
    main()
