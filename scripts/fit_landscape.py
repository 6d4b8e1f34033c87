"""Why the old tap fit fell into a low-lambda1 basin: the loss over (lambda1, lambda2) for
three subjects of the failing kind, old read-out against the current one.

Subjects (lambda1, lambda2, SMT) = (4, 2, 500 ms), (6, 1.5, 400 ms), (8, 2.5, 650 ms), four
metronome rates 0.7-1.3 x SMT, taps from trial start, 4 ms jitter, 15 s trials, from the
independent NumPy reference (nrtjax.fitting.synthetic, RK4 at 2 kHz, peaks of Re z, seed 1).
Prints, per read-out, the grid minimum (25 x 21 log grid, lambda1 0.5-20, lambda2 0.2-8),
the loss at the truth and the residual of the first tap.

    .venv/bin/python scripts/fit_landscape.py
"""

import warnings

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

import nrtjax as nrt
from nrtjax.fitting import losses, readouts, synthetic

DURATION = 15.0
SUBJECTS = [(4.0, 2.0, 500.0), (6.0, 1.5, 400.0), (8.0, 2.5, 650.0)]
READOUTS = {
    "old: angle of z, first tap k >= 1, Euler 500 Hz": None,
    "new: peaks of Re z, k >= 0, RK4 250 Hz": losses.TapResiduals(duration=DURATION, fs=250.0),
}


class _OldResiduals(losses.TapResiduals):
    """The read-out before the fix: angle of z, first model tap k = 1."""

    def _trial(self, model, period, taps, mask):
        ts, phase = self.model_phase(model, period)
        safe = jnp.where(mask, taps, 0.5 * self.duration)
        k = jnp.round(readouts.interp(ts, jax.lax.stop_gradient(phase), safe)
                      / (2 * jnp.pi))
        model_taps = readouts.tap_times(ts, phase, jnp.maximum(k, 1).astype(jnp.int32))
        return jnp.where(mask, 1e3 * (safe - model_taps), 0.0), mask.astype(taps.dtype)


def main():
    jax.config.update("jax_enable_x64", True)
    warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
    READOUTS["old: angle of z, first tap k >= 1, Euler 500 Hz"] = _OldResiduals(
        duration=DURATION, fs=500.0, solver=diffrax.Euler(), readout="phase")
    subs = [{"subject": f"s{i}", "lambda1": l1, "lambda2": l2, "smt_ms": smt,
             "periods_ms": list(np.array([0.7, 0.85, 1.15, 1.3]) * smt), "jitter_ms": 4.0,
             "start_s": 0.0} for i, (l1, l2, smt) in enumerate(SUBJECTS)]
    cohort = synthetic.simulate_cohort(subs, duration=DURATION, seed=1)
    n = max(len(t) for s in cohort for t in s["taps"])
    g1, g2 = np.geomspace(0.5, 20, 25), np.geomspace(0.2, 8, 21)
    for name, res in READOUTS.items():
        print(name)

        @jax.jit
        def loss(l1, l2, d, res=res):
            r, w = res(nrt.ASHLE(lambda1=l1, lambda2=l2), d)
            return jnp.sum(w * r**2) / jnp.sum(w)

        grid = jax.jit(jax.vmap(jax.vmap(loss, (None, 0, None)), (0, None, None)))
        for s in cohort:
            taps, mask = np.zeros((4, n)), np.zeros((4, n), bool)
            for j, t in enumerate(s["taps"]):
                taps[j, :len(t)], mask[j, :len(t)] = t, True
            d = losses.TapData(jnp.asarray(s["smt_ms"] / 1e3),
                               jnp.asarray(np.array(s["periods_ms"]) / 1e3),
                               jnp.asarray(taps), jnp.asarray(mask))
            g = np.asarray(grid(jnp.asarray(g1), jnp.asarray(g2), d))
            i, j = np.unravel_index(np.nanargmin(g), g.shape)
            r, _ = res(nrt.ASHLE(lambda1=s["lambda1"], lambda2=s["lambda2"]), d)
            print(f"  true ({s['lambda1']:g}, {s['lambda2']:g}): grid minimum "
                  f"({g1[i]:.2f}, {g2[j]:.2f}) loss {g[i, j]:.1f} ms^2; at the truth "
                  f"{float(loss(s['lambda1'], s['lambda2'], d)):.1f} ms^2; first-tap residual "
                  f"{float(r[0]):+.1f} ms")


if __name__ == "__main__":
    main()
