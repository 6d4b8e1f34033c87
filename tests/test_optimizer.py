"""`nrtjax.make_optimizer`, the one optimiser of fitting and the trainers, against a NumPy
transcription of its documented rule (clip, Adam, decoupled weight decay, warmup + cosine)."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nrtjax as nrt


def _oracle(grads, params0, *, lr, total, warmup, final, clip, wd, mask):
    """Parameters after each step of the documented rule, in float64 NumPy."""
    p = np.array(params0, dtype=np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    out = []
    for s, g in enumerate(grads):
        g = np.asarray(g, dtype=np.float64)
        if clip is not None:
            norm = np.sqrt(np.sum(g**2))
            g = g * min(1.0, clip / norm) if norm > 0 else g
        if warmup > 0 and s < warmup:
            eta = lr / warmup + (lr - lr / warmup) * s / warmup
        else:
            s0 = s - warmup
            span = max(total, warmup + 1) - warmup if warmup > 0 else max(total, 1)
            c = 0.5 * (1 + np.cos(np.pi * min(s0, span) / span))
            eta = lr * final + (lr - lr * final) * c
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        mh, vh = m / (1 - 0.9 ** (s + 1)), v / (1 - 0.999 ** (s + 1))
        step = mh / (np.sqrt(vh) + 1e-8) + wd * p * mask
        p = p - eta * step
        out.append(p.copy())
    return np.array(out)


@pytest.mark.parametrize("warmup, clip, wd", [(0, 10.0, 0.0), (3, 0.5, 1e-2), (2, None, 0.1)])
def test_make_optimizer_follows_its_documented_rule(warmup, clip, wd):
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(12, 4)) * 3.0  # 12 steps: past the end of the 10-step schedule
    p0 = rng.normal(size=4)
    params = {"w": jnp.asarray(p0[:3]), "b": jnp.asarray(p0[3:])}
    opt = nrt.make_optimizer(0.05, total_steps=10, warmup_steps=warmup, final_fraction=0.1,
                             clip_norm=clip, weight_decay=wd,
                             decay_mask=lambda t: {"w": True, "b": False})  # no bias decay
    state = opt.init(params)
    got = []
    for g in grads:
        updates, state = opt.update({"w": jnp.asarray(g[:3]), "b": jnp.asarray(g[3:])}, state,
                                    params)
        params = optax.apply_updates(params, updates)
        got.append(np.concatenate([params["w"], params["b"]]))
    want = _oracle(grads, p0, lr=0.05, total=10, warmup=warmup, final=0.1, clip=clip, wd=wd,
                   mask=np.array([1.0, 1.0, 1.0, 0.0]))
    # optax evaluates the warmup schedule in float32 arithmetic (a step size off by an ulp,
    # 1e-7 relative); everything else agrees to float64 rounding.
    tol = 1e-6 if warmup else 1e-10
    np.testing.assert_allclose(np.array(got), want, rtol=tol, atol=tol * 1e-2)
