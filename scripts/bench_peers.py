"""Benchmark: nrtjax against the fastest JAX code for the same equations, in one run.

The workload (issue 25): 289 canonical oscillators log-spaced 0.25-16 Hz (alpha 0, beta1
-1, beta2 0, eps 0), forced by 0.25 exp(i 2 pi 2 t) sampled at 256 Hz for 60 s, RK4 at
dt = 1/256, float64. Contenders, each written the way its users write it:

- nrtjax: `nrt.simulate` of a `nrt.GrFNN` under the user's own `jax.jit` (and `jax.vmap`,
    `jax.grad`), nrtjax imported first;
- plain JAX: an RK4 `jax.lax.scan` written in this script (complex state, the forcing's
    half-step value the mean of two samples), jitted with XLA's default options, as in a
    process without nrtjax; and once more with the options nrtjax sets for the process
    (`nrt.CPU_COMPILER_OPTIONS`), the like-for-like comparison of the code itself;
- BrainPy: `brainpy.odeint(method="rk4")` stepped by `jax.lax.scan`, in its own venv
    (`--brainpy-venv`, created with the same jax/jaxlib versions if missing; skipped with a
    message if it cannot be installed), run as a child process (scripts/_peer_brainpy.py)
    that answers one timed call per request, with the environment of a process that never
    imported nrtjax.

Cases: one network (full trajectory); a `--members` sweep over alpha (final states,
`jax.jit(jax.vmap(...))`); `jax.grad` of the mean |z|^2 over the second half w.r.t. alpha
(with nrtjax's own forward of that loss for the gradient/forward ratio). Every contender's
results are compared (max abs diff, asserted) before anything is timed; then each case runs
its contenders alternately, A B C A B C ..., `--repeats` times (each compiled first), and
reports medians and ratios to nrtjax: wall-clock seconds, and the CPU seconds of each
contender's process (all its threads), which other processes on a loaded machine disturb
less. The load average is printed before and after.

    .venv/bin/python scripts/bench_peers.py [--quick] [--repeats 7] [--breakdown]
        [--cases single,sweep,grad] [--malloc-hugepages] [--no-brainpy] [--json out.json]

`--breakdown` adds variants that each put one cost back (docs/benchmarks.md, "Where the
time went"); `--malloc-hugepages` re-runs the process with glibc's malloc on huge pages
first (experiments/_env.py), as `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` would.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments._env import reexec_with_malloc_hugepages

if __name__ == "__main__" and "--malloc-hugepages" in sys.argv:
    reexec_with_malloc_hugepages()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import nrtjax as nrt  # noqa: E402
from nrtjax import _compile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
XLA_DEFAULTS = {"xla_cpu_prefer_vector_width": 256}  # XLA:CPU's own default


def plain_jax(freqs, xs, fs):
    """The RK4 scan a JAX user writes for these equations (beta2 = eps = 0)."""
    f = jnp.asarray(freqs)
    xs = jnp.asarray(xs)
    dt = 1.0 / fs
    steps = xs.shape[0] - 1
    z0 = jnp.full(f.shape, 0.01 + 0.0j)

    def field(z, x, alpha):
        r2 = jnp.real(z * jnp.conj(z))
        return z * (alpha * f + 2j * jnp.pi * f - f * r2) + f * x

    def step(alpha):
        def body(z, k):
            x0, x1 = xs[k], xs[k + 1]
            xm = 0.5 * (x0 + x1)
            k1 = field(z, x0, alpha)
            k2 = field(z + 0.5 * dt * k1, xm, alpha)
            k3 = field(z + 0.5 * dt * k2, xm, alpha)
            k4 = field(z + dt * k3, x1, alpha)
            return z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return body

    def trajectory(alpha):
        body = step(alpha)
        _, ys = jax.lax.scan(lambda z, k: (body(z, k),) * 2, z0, jnp.arange(steps))
        return jnp.concatenate([z0[None], ys])

    def final(alpha):
        body = step(alpha)
        return jax.lax.scan(lambda z, k: (body(z, k), None), z0, jnp.arange(steps))[0]

    return trajectory, final


def nrtjax_calls(freqs, sig, fs):
    """`nrt.simulate` as a user writes it."""
    dt = 1.0 / fs

    def net(alpha):
        return nrt.GrFNN(freqs, alpha=alpha, beta1=-1.0, beta2=0.0, eps=0.0)

    def trajectory(alpha):
        return nrt.simulate(net(alpha), sig, dt=dt).ys

    def final(alpha):
        return nrt.simulate(net(alpha), sig, dt=dt, saveat=[sig.t1], throw=False).ys[-1]

    return trajectory, final


def breakdown_calls(freqs, sig, xs, fs, alphas):
    """Variants that isolate one cost each (`--breakdown`), single network and sweep."""
    dt = 1.0 / fs
    zero = dict(beta2=0.0, delta1=0.0, delta2=0.0, eps=0.0)

    def general(alpha, z, throw=True):
        # the zeros passed as traced values: the field keeps every term (and the guard)
        m = nrt.GrFNN(freqs, alpha=alpha, beta1=-1.0, **dict(zip(zero, z)))
        return nrt.simulate(m, sig, dt=dt, throw=throw)

    def general_final(alpha, z):
        m = nrt.GrFNN(freqs, alpha=alpha, beta1=-1.0, **dict(zip(zero, z)))
        return nrt.simulate(m, sig, dt=dt, saveat=[sig.t1], throw=False).ys[-1]

    def nothrow(alpha):
        return nrt.simulate(nrt.GrFNN(freqs, alpha=alpha, beta1=-1.0, **zero), sig, dt=dt, throw=False).ys

    # the plain scan reading the forcing at every stage time as Signal does
    f = jnp.asarray(freqs)
    steps = xs.shape[0] - 1
    z0 = jnp.full(f.shape, 0.01 + 0.0j)

    def interp_traj(alpha):
        def field(z, t):
            r2 = jnp.real(z * jnp.conj(z))
            return z * (alpha * f + 2j * jnp.pi * f - f * r2) + f * sig.evaluate(t)

        def body(z, k):
            t = k * dt
            k1 = field(z, t)
            k2 = field(z + 0.5 * dt * k1, t + 0.5 * dt)
            k3 = field(z + 0.5 * dt * k2, t + 0.5 * dt)
            k4 = field(z + dt * k3, t + dt)
            z1 = z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            return z1, z1

        _, ys = jax.lax.scan(body, z0, jnp.arange(steps))
        return jnp.concatenate([z0[None], ys])

    zs = tuple(0.0 for _ in zero)
    alphas = jnp.asarray(alphas)
    return {
        "single": {"general field (zeros traced)": (jax.jit(lambda a, z: general(a, z).ys), (0.0, zs)),
                   "throw=False": (jax.jit(nothrow), (0.0,)),
                   "XLA default vector width": (jax.jit(nrtjax_calls(freqs, sig, fs)[0],
                                                        compiler_options=XLA_DEFAULTS), (0.0,)),
                   "plain JAX, forcing read per stage": (jax.jit(interp_traj), (0.0,))},
        "sweep": {"general field (zeros traced)": (jax.jit(jax.vmap(general_final, in_axes=(0, None))),
                                                    (alphas, zs)),
                  "XLA default vector width": (jax.jit(jax.vmap(nrtjax_calls(freqs, sig, fs)[1]),
                                                       compiler_options=XLA_DEFAULTS), (alphas,))},
    }


def half_loss(trajectory):
    def loss(alpha):
        ys = trajectory(alpha)
        return jnp.mean(jnp.abs(ys[(ys.shape[0] - 1) // 2:]) ** 2)
    return loss


class BrainPyPeer:
    """The BrainPy child process: one request per line, one timed call per `run`."""

    def __init__(self, python: Path, folder: Path, fs: float):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        before = getattr(_compile, "XLA_FLAGS_BEFORE_IMPORT", os.environ.get("XLA_FLAGS"))
        if before is None:
            env.pop("XLA_FLAGS", None)
        else:
            env["XLA_FLAGS"] = before
        self.proc = subprocess.Popen(
            [str(python), str(ROOT / "scripts" / "_peer_brainpy.py"), str(folder), str(fs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._answer()

    def _answer(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@@ "):
                return json.loads(line[3:])
        raise RuntimeError(f"the BrainPy process stopped (exit code {self.proc.wait()})")

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self):
        if self.proc.poll() is None:
            self.ask_quit()

    def ask_quit(self):
        self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


def brainpy_python(venv: Path, create: bool) -> Path | None:
    """The venv's Python with BrainPy importable, creating the venv (pinned to this
    process's jax/jaxlib) when missing; None with a message when that fails."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import brainpy, jax; print(brainpy.__version__, jax.__version__)"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    if not create:
        print(f"BrainPy: skipped (no venv with BrainPy at {venv}; drop --no-install to create it)")
        return None
    import jaxlib

    print(f"BrainPy: creating {venv} (pip install brainpy jax=={jax.__version__} "
          f"jaxlib=={jaxlib.__version__}) ...", file=sys.stderr)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(python), "-m", "pip", "install", "-q", f"jax=={jax.__version__}",
              f"jaxlib=={jaxlib.__version__}", "brainpy"]]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"BrainPy: skipped ({' '.join(cmd[-3:])} failed: {r.stderr.strip()[-400:]})")
            return None
    if subprocess.run(check, capture_output=True).returncode != 0:
        print("BrainPy: skipped (installed, but `import brainpy` fails)")
        return None
    return python


def alternate(calls: dict, repeats: int) -> tuple[dict, dict]:
    """Median wall and CPU seconds of each contender, run in turn A B C A B C ..."""
    times = {k: [] for k in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(call())
    wall = {k: float(np.median([w for w, _ in v])) for k, v in times.items()}
    cpu = {k: float(np.median([c for _, c in v])) for k, v in times.items()}
    return wall, cpu


def timed(fn, *args):
    """A call returning (wall seconds, CPU seconds of this process, all threads)."""
    def call():
        start, cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*args))
        return time.perf_counter() - start, time.process_time() - cpu
    return call


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10 s, 32 members, 3 repeats")
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--fs", type=float, default=256.0)
    p.add_argument("--n", type=int, default=289)
    p.add_argument("--members", type=int, default=256)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--brainpy-venv", type=Path, default=ROOT / ".cache" / "brainpy-venv")
    p.add_argument("--no-brainpy", action="store_true")
    p.add_argument("--no-install", action="store_true", help="do not create the BrainPy venv")
    p.add_argument("--malloc-hugepages", action="store_true",
                   help="re-run with glibc.malloc.hugetlb=1 (experiments/_env.py) first")
    p.add_argument("--breakdown", action="store_true",
                   help="also time variants that isolate one cost each (docs/benchmarks.md)")
    p.add_argument("--cases", default="single,sweep,grad", help="comma-separated subset to run")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args()
    if a.quick:
        a.duration, a.members, a.repeats = 10.0, 32, 3
    jax.config.update("jax_enable_x64", True)

    freqs = nrt.log_freqs(0.25, 16.0, a.n)
    sig = nrt.metronome(2.0, a.duration, a.fs, amplitude=0.25)
    xs = np.asarray(sig.xs)
    alphas = np.linspace(-1.0, 0.5, a.members)
    res = {"python": platform.python_version(), "jax": jax.__version__, "cpus": os.cpu_count(),
           "xla_flags": os.environ.get("XLA_FLAGS", ""), "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
           "oscillators": a.n, "steps": xs.shape[0] - 1, "members": a.members, "repeats": a.repeats,
           "load_before": os.getloadavg()}
    print(f"Python {res['python']}, JAX {res['jax']}, {res['cpus']} CPUs, XLA_FLAGS={res['xla_flags'] or '(unset)'}"
          f", GLIBC_TUNABLES={res['glibc_tunables'] or '(unset)'}; {a.n} oscillators, {res['steps']} RK4 steps, "
          f"{a.members} members, {a.repeats} repeats; load average {res['load_before'][0]:.2f}")

    nrt_traj, nrt_final = nrtjax_calls(freqs, sig, a.fs)
    pl_traj, pl_final = plain_jax(freqs, xs, a.fs)
    flags_set = getattr(_compile, "CPU_FLAGS_SET_AT_IMPORT", False)  # (older nrtjax: never)
    plain_opts = XLA_DEFAULTS if flags_set else {}
    cases = {
        "single": {"nrtjax": (jax.jit(nrt_traj), 0.0),
                   "plain JAX": (jax.jit(pl_traj, compiler_options=plain_opts), 0.0),
                   "plain JAX, nrtjax's flags": (jax.jit(pl_traj), 0.0)},
        "sweep": {"nrtjax": (jax.jit(jax.vmap(nrt_final)), jnp.asarray(alphas)),
                  "plain JAX": (jax.jit(jax.vmap(pl_final), compiler_options=plain_opts), jnp.asarray(alphas)),
                  "plain JAX, nrtjax's flags": (jax.jit(jax.vmap(pl_final)), jnp.asarray(alphas))},
        "grad": {"nrtjax": (jax.jit(jax.grad(half_loss(nrt_traj))), 0.0),
                 "plain JAX": (jax.jit(jax.grad(half_loss(pl_traj)), compiler_options=plain_opts), 0.0),
                 "plain JAX, nrtjax's flags": (jax.jit(jax.grad(half_loss(pl_traj))), 0.0),
                 "nrtjax forward": (jax.jit(half_loss(nrt_traj)), 0.0)},
    }
    if not flags_set:
        for case in cases.values():
            del case["plain JAX, nrtjax's flags"]
    for case in cases.values():
        for k, (fn, arg) in list(case.items()):
            case[k] = (fn, (arg,))
    if a.breakdown:
        for case, calls in breakdown_calls(freqs, sig, xs, a.fs, alphas).items():
            cases[case].update(calls)
    cases = {k: v for k, v in cases.items() if k in a.cases.split(",")}

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, arr in (("freqs", freqs), ("xs", xs), ("alphas", alphas)):
            np.save(folder / f"{name}.npy", np.asarray(arr), allow_pickle=False)
        peer = None
        if not a.no_brainpy:
            python = brainpy_python(a.brainpy_venv, create=not a.no_install)
            if python is not None:
                peer = BrainPyPeer(python, folder, a.fs)
                res["brainpy"] = peer.info["brainpy"]
                print(f"BrainPy {peer.info['brainpy']} on JAX {peer.info['jax']} (child process)")
        try:
            # Agreement first: every contender's result against nrtjax's.
            for case, calls in cases.items():
                ref = np.asarray(calls["nrtjax"][0](*calls["nrtjax"][1]))
                others = {k: np.asarray(fn(*arg)) for k, (fn, arg) in calls.items() if k != "nrtjax"}
                others.pop("nrtjax forward", None)
                if peer is not None:
                    path = str(folder / f"bp_{case}.npy")
                    peer.ask(cmd="save", case=case, path=path)
                    others["BrainPy"] = np.load(path, allow_pickle=False)
                scale = max(1.0, float(np.max(np.abs(ref))))
                for k, v in others.items():
                    diff = float(np.max(np.abs(v - ref)))
                    res[f"{case}_max_abs_diff_{k}"] = diff
                    print(f"[{case}] max |{k} - nrtjax| = {diff:.2e}")
                    assert v.shape == ref.shape and diff <= 1e-9 * scale, (case, k, diff)

            for case, calls in cases.items():
                runs = {k: timed(fn, *arg) for k, (fn, arg) in calls.items()}
                if peer is not None:
                    runs["BrainPy"] = lambda case=case: tuple(peer.ask(cmd="run", case=case)["seconds"])
                med, cpu = alternate(runs, a.repeats)
                res[case], res[f"{case}_cpu"] = med, cpu
                mine = med["nrtjax"]
                peers = [k for k in ("plain JAX", "BrainPy") if k in med]
                fastest = min(peers, key=med.get)
                line = " | ".join(f"{k} {v:.4f} s" for k, v in med.items())
                ratios = {k: mine / med[k] for k in med if k != "nrtjax"}
                res[f"{case}_ratios"] = ratios
                print(f"[{case}] {line}")
                print(f"[{case}] CPU seconds (all threads): " + " | ".join(f"{k} {v:.4f}" for k, v in cpu.items())
                      + f"; nrtjax / fastest peer in CPU time: "
                      f"{cpu['nrtjax'] / min(cpu[k] for k in peers):.2f}x")
                print(f"[{case}] nrtjax / " + ", ".join(f"{k}: {r:.2f}x" for k, r in ratios.items())
                      + f"; fastest peer as users run it: {fastest} -> {mine / med[fastest]:.2f}x (target <= 1.0x)")
            if "grad" in res:
                g = res["grad"]["nrtjax"] / res["grad"]["nrtjax forward"]
                gc = res["grad_cpu"]["nrtjax"] / res["grad_cpu"]["nrtjax forward"]
                res["grad_over_forward"], res["grad_over_forward_cpu"] = g, gc
                print(f"[grad] nrtjax gradient / its forward: {g:.2f}x wall, {gc:.2f}x CPU time (target <= 4x)")
        finally:
            if peer is not None:
                peer.close()
    res["load_after"] = os.getloadavg()
    print(f"load average after: {res['load_after'][0]:.2f}")
    if a.json:
        nrt.io.write_json(a.json, res)


if __name__ == "__main__":
    main()
