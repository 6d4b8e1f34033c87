"""BrainPy's side of scripts/bench_peers.py, run by the Python of BrainPy's own venv.

It imports only JAX, NumPy and BrainPy (not nrtjax), builds the same workload from the
arrays the parent wrote (`freqs.npy`, `xs.npy`: oscillator frequencies and the sampled
complex forcing), and answers one JSON request per stdin line on stdout, each answer on a
line starting with `@@ ` (BrainPy may print its own lines):

- `{"cmd": "run", "case": C}`: run case C once (compiled on its first request) and
  answer `{"seconds": [wall seconds, CPU seconds of this process]}` for that call;
- `{"cmd": "save", "case": C, "path": P}`: write case C's result to the `.npy` file P;
- `{"cmd": "quit"}`.

Cases: `single` (the full trajectory of one network), `sweep` (the final states of one
network per alpha in `alphas.npy`, `jax.jit(jax.vmap(...))`), `grad` (d loss / d alpha at
alpha 0, loss the mean of |z|^2 over the second half, `jax.jit(jax.grad(...))`).

The equations: canonical oscillators with alpha, beta1 = -1 (beta2 = eps = 0), log
frequency scaling, `dz/dt = z (alpha f + i 2 pi f + beta1 f |z|^2) + f x(t)`, integrated by
`brainpy.odeint(method="rk4")` (the classical RK4) stepped by `jax.lax.scan`, the
forcing read at each stage time by index and linear interpolation.
"""

import json
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import brainpy as bp  # noqa: E402
import brainpy.math as bm  # noqa: E402

bm.enable_x64()  # BrainPy's own default float is float32
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def build(folder: Path, fs: float):
    freqs = jnp.asarray(np.load(folder / "freqs.npy", allow_pickle=False))
    xs = jnp.asarray(np.load(folder / "xs.npy", allow_pickle=False))
    alphas = jnp.asarray(np.load(folder / "alphas.npy", allow_pickle=False))
    dt = 1.0 / fs
    steps = xs.shape[0] - 1
    half = steps // 2

    def forcing(t):
        u = t * fs
        i = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, steps - 1)
        w = u - i
        return xs[i] * (1 - w) + xs[i + 1] * w

    def field(z, t, alpha):
        r2 = jnp.real(z * jnp.conj(z))
        return z * (alpha * freqs + 2j * jnp.pi * freqs - freqs * r2) + freqs * forcing(t)

    integral = bp.odeint(field, method="rk4", dt=dt)
    z0 = jnp.full(freqs.shape, 0.01 + 0.0j)

    def trajectory(alpha):
        def step(z, k):
            z1 = integral(z, k * dt, alpha, dt=dt)
            return z1, z1

        _, ys = jax.lax.scan(step, z0, jnp.arange(steps))
        return jnp.concatenate([z0[None], ys])

    def final(alpha):
        def step(z, k):
            return integral(z, k * dt, alpha, dt=dt), None

        return jax.lax.scan(step, z0, jnp.arange(steps))[0]

    def loss(alpha):
        ys = trajectory(alpha)
        return jnp.mean(jnp.abs(ys[half:]) ** 2)

    calls = {
        "single": (jax.jit(trajectory), (0.0,)),
        "sweep": (jax.jit(jax.vmap(final)), (alphas,)),
        "grad": (jax.jit(jax.grad(loss)), (0.0,)),
    }
    return calls


def main() -> None:
    folder, fs = Path(sys.argv[1]), float(sys.argv[2])
    calls = build(folder, fs)
    out = {}
    print("@@ " + json.dumps({"ready": True, "brainpy": bp.__version__, "jax": jax.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        fn, args = calls[req["case"]]
        if req["cmd"] == "run":
            start, cpu = time.perf_counter(), time.process_time()
            out[req["case"]] = jax.block_until_ready(fn(*args))
            answer = {"seconds": [time.perf_counter() - start, time.process_time() - cpu]}
        else:
            if req["case"] not in out:
                out[req["case"]] = jax.block_until_ready(fn(*args))
            np.save(req["path"], np.asarray(out[req["case"]]), allow_pickle=False)
            answer = {"saved": req["path"]}
        print("@@ " + json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
