"""Worked fit 2: recover a GrFNN's (alpha, beta1) from a target resonance curve.

A log-spaced GrFNN bank is driven by a 2 Hz sinusoid at two forcing strengths; the
resonance curve is each oscillator's mean amplitude |z| over the last seconds. The target
is simulated with known (alpha, beta1); `nrt.fit` recovers them from a wrong start by
gradient through `nrt.simulate` (RK4), with alpha and beta1 kept negative by bounds.

    .venv/bin/python scripts/fit_grfnn_resonance.py [--steps 200]
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

import nrtjax as nrt

FREQS = nrt.log_freqs(0.5, 4.0, 13)
FORCING = (0.05, 0.4)
STIM_HZ, FS, DURATION, TAIL = 2.0, 32.0, 8.0, 2.0


class Curve(eqx.Module):
    """A target resonance curve: amplitudes `(forcing, n)`."""

    amplitude: jax.Array


def resonance_curve(net: nrt.GrFNN) -> jax.Array:
    """Mean |z| over the last `TAIL` seconds for each forcing strength, `(forcing, n)`."""
    def one(strength):
        sig = nrt.metronome(STIM_HZ, DURATION, FS, amplitude=1.0)
        sig = nrt.Signal.sampled(sig.xs * strength, FS)
        traj = nrt.simulate(net, sig, dt=1 / FS, throw=False)
        keep = traj.ts >= DURATION - TAIL
        return jnp.sum(jnp.where(keep[:, None], jnp.abs(traj.ys), 0), 0) / jnp.sum(keep)

    return jnp.stack([one(s) for s in FORCING])


def residuals(net, target: Curve):
    r = (jnp.log(resonance_curve(net)) - jnp.log(target.amplitude)).reshape(-1)
    return r, jnp.ones_like(r)


def recover(alpha: float, beta1: float, *, steps: int, key, noise: float = 0.0,
            restarts: int = 2):
    """Simulate the target at (alpha, beta1) (with multiplicative noise `noise`), then
    fit from (-0.3, -1.0). Returns (FitResult, target amplitudes)."""
    target = resonance_curve(nrt.GrFNN(FREQS, alpha=alpha, beta1=beta1))
    if noise > 0:
        target = target * jnp.exp(noise * jr.normal(jr.fold_in(key, 1), target.shape))
    start = nrt.GrFNN(FREQS, alpha=-0.3, beta1=-1.0)
    out = nrt.fit(start, residuals, Curve(target[None]), params=("alpha", "beta1"),
                  bounds={"alpha": (-10.0, 0.0), "beta1": (-50.0, 0.0)}, key=key,
                  restarts=restarts, steps=steps, patience=40, learning_rate=0.05)
    return out, target


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--alpha", type=float, default=-1.0)
    parser.add_argument("--beta1", type=float, default=-4.0)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    t = time.perf_counter()
    out, _ = recover(args.alpha, args.beta1, steps=args.steps, key=jr.key(0), noise=0.02)
    a, b = np.asarray(out.params[0])
    sa, sb = np.asarray(out.se[0])
    print(f"true   alpha={args.alpha:.4f} beta1={args.beta1:.4f}")
    print(f"fitted alpha={a:.4f} +- {sa:.4f}  beta1={b:.4f} +- {sb:.4f}  "
          f"(loss {float(out.loss[0]):.2e}, {int(out.steps_run[0])} steps, "
          f"{time.perf_counter() - t:.1f} s with compilation)")


if __name__ == "__main__":
    main()
