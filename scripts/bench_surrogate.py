"""Surrogate inference throughput vs the ASHLE ODE it replaces, and training steps/s.

usage: .venv/bin/python scripts/bench_surrogate.py [--songs 16] [--seconds 30] [--steps 10]

Everything is measured in this one run on this machine (warm, after compilation):
- surrogate: the shipped TCN on a batch of songs' forcings (vmap), samples/s;
- ODE: ASHLE integrated by RK4 at 256 Hz (the ground-truth solver), vmapped over the
  same batch, in float64 (as the ground truth) and float32;
- training: steps/s of the jitted step with the shipped config's batch and crop.
"""

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402

import nrtjax as nrt  # noqa: E402
from nrtjax.surrogate.data import _ashle_run  # noqa: E402


def timeit(fn, repeat=3):
    jax.block_until_ready(fn())
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--songs", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    spec = nrt.surrogate.DatasetSpec(n_songs=a.songs, duration=a.seconds)
    data = nrt.surrogate.make_dataset(spec, key=jr.key(0))
    forcing = jnp.asarray(data["stim_re"] + 1j * data["stim_im"], jnp.complex128)
    n = forcing.size
    model = nrt.surrogate.load()
    x = jnp.stack([forcing.real, forcing.imag], axis=1).astype(jnp.float32)
    t_sur = timeit(lambda: nrt.surrogate.predict_arrays(model, x).phase)
    ode = jax.jit(jax.vmap(lambda f: _ashle_run(f, 256.0).z))
    t64 = timeit(lambda: ode(forcing))
    f32 = forcing.astype(jnp.complex64)
    t32 = timeit(lambda: ode(f32))
    print(f"batch: {a.songs} songs x {a.seconds:.0f} s at 256 Hz = {n} samples")
    print(f"surrogate (float32):   {n / t_sur:12.0f} samples/s")
    print(f"ASHLE RK4 (float64):   {n / t64:12.0f} samples/s   ratio surrogate/ODE {t64 / t_sur:.2f}x")
    print(f"ASHLE RK4 (float32):   {n / t32:12.0f} samples/s   ratio surrogate/ODE {t32 / t_sur:.2f}x")
    # Training steps/s with the shipped configuration.
    opt = nrt.make_optimizer(lr=2e-3, total_steps=100, warmup_steps=10,
                                       weight_decay=1e-4, clip_norm=1.0)
    state = nrt.surrogate.init_state(model, opt, key=jr.key(1))
    fn = nrt.surrogate.make_step_fn(opt, nrt.surrogate.LossWeights(), batch_size=16, crop=1024,
                                    warm=512)
    arrays = nrt.surrogate.training_arrays(data)
    state, _, _ = fn(state, arrays)
    jax.block_until_ready(state)
    t = time.perf_counter()
    for _ in range(a.steps):
        state, loss, _ = fn(state, arrays)
    jax.block_until_ready(loss)
    dt = time.perf_counter() - t
    print(f"training (batch 16 x 1024 steps): {a.steps / dt:.3f} steps/s")


if __name__ == "__main__":
    main()
