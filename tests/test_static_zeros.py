"""Parameters that are concrete zeros drop their terms (`nrtjax.models._base`): the same
states bit for bit as the general field, the same gradients, and never for a value that is
traced (differentiated or batched)."""

import os
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.models._base import is_static_zero, set_static_zeros, static_zero_names, with_static_zeros

FS = 64.0
FREQS = nrt.log_freqs(0.5, 4.0, 13)
SIG = nrt.metronome(2.0, 3.0, FS, amplitude=0.3)
ROOT = Path(__file__).resolve().parent.parent


def _ys(model, **kw):
    return nrt.simulate(model, SIG, dt=1 / FS, **kw).ys


@pytest.mark.parametrize("input", ["linear", "active", "allfreq", "all2freq"])
@pytest.mark.parametrize("params", [
    dict(alpha=0.0, beta1=-1.0, beta2=0.0, eps=0.0),
    dict(alpha=-0.2, beta1=0.0, beta2=-1.0, delta1=0.0, delta2=0.0, eps=0.5),
    dict(alpha=0.1, beta1=-1.0, beta2=0.0, delta1=0.3, delta2=0.0, eps=1.0),
])
def test_dropped_terms_give_identical_states(input, params):
    """The model passed to `jit` (every leaf traced: XLA folds no constant) with its zero
    fields as arrays (general field) or as Python zeros (terms dropped): identical states.
    (Concrete parameters closed over by a jit are constants XLA folds, which moves the
    last bit with or without dropped terms, so that comparison is to 1e-14.)"""
    model = nrt.GrFNN(FREQS, input=input, **params)
    zeros = static_zero_names(model)
    assert set(zeros) == {k for k, v in params.items() if v == 0.0} | (
        {"delta1", "delta2"} - set(params))
    run = jax.jit(lambda m: _ys(m))
    general = run(model)
    fixed = run(set_static_zeros(model, zeros))
    assert np.array_equal(np.asarray(fixed), np.asarray(general))
    closed = jax.jit(lambda: _ys(nrt.GrFNN(FREQS, input=input, **params)))()
    np.testing.assert_allclose(closed, general, rtol=0, atol=1e-14)


def test_saved_every_few_steps_and_sweep_identical():
    save = np.arange(0, 193, 48) / FS
    model = nrt.GrFNN(FREQS, beta2=0.0, eps=0.0)

    def run(m, a):
        return _ys(eqx.tree_at(lambda q: q.alpha, m, a), saveat=save, throw=False)

    alphas = jnp.array([-0.3, 0.0, 0.2])
    sweep = jax.jit(jax.vmap(run, in_axes=(None, 0)))
    general = sweep(model, alphas)
    fixed = sweep(set_static_zeros(model, ("beta2", "eps", "delta1", "delta2")), alphas)
    assert np.array_equal(np.asarray(fixed), np.asarray(general))


def _loss(ys):
    return jnp.mean(jnp.abs(ys[ys.shape[0] // 2:]) ** 2)


def test_gradients_through_dropped_terms():
    """d/d alpha with beta2 = eps = 0 written as numbers equals the general field's."""
    fixed = jax.jit(jax.grad(lambda a: _loss(_ys(nrt.GrFNN(FREQS, alpha=a, beta2=0.0, eps=0.0)))))(-0.1)
    general = jax.jit(jax.grad(lambda a, b2, e: _loss(_ys(nrt.GrFNN(FREQS, alpha=a, beta2=b2, eps=e)))))(
        -0.1, 0.0, 0.0)
    np.testing.assert_allclose(fixed, general, rtol=1e-12)


def test_a_differentiated_zero_keeps_its_term():
    """d/d eps at eps = 0 (beta2 = -1): the quintic term's derivative is not dropped.
    Oracle: a one-sided finite difference (eps must stay >= 0)."""
    def loss(e):
        return _loss(_ys(nrt.GrFNN(FREQS, alpha=0.2, beta2=-1.0, eps=e)))
    g = jax.grad(loss)(0.0)
    h = 1e-6
    fd = (loss(h) - loss(0.0)) / h
    assert abs(float(g)) > 1e-6
    np.testing.assert_allclose(g, fd, rtol=1e-3)
    model = nrt.GrFNN(FREQS, eps=0.0)
    grads = jax.grad(lambda m: _loss(_ys(m)))(model)
    assert float(jnp.abs(grads.eps)) > 1e-6  # every leaf traced: nothing dropped


def test_only_concrete_zeros_are_replaced():
    assert is_static_zero(0.0) and is_static_zero(0) and not is_static_zero(False)
    assert not is_static_zero(jnp.zeros(())) and not is_static_zero(1e-300)
    m = nrt.GrFNN(FREQS, alpha=0.0, beta2=0.0, eps=0.0)
    fixed = with_static_zeros(m)
    assert fixed.alpha == 0.0 and isinstance(fixed.eps, float) and isinstance(fixed.beta1, jax.Array)
    net = nrt.Network((m, nrt.GrFNN(FREQS, eps=0.5)))
    fixed_net = with_static_zeros(net)
    assert isinstance(fixed_net.layers[0].eps, float) and isinstance(fixed_net.layers[1].eps, jax.Array)
    seen = {}

    def probe(e):
        seen["traced"] = static_zero_names(nrt.GrFNN(FREQS, eps=e))
        return e

    jax.jit(probe)(0.0)
    assert "eps" not in seen["traced"] and "alpha" in seen["traced"]  # alpha: the default 0
    jax.vmap(probe)(jnp.zeros(2))
    assert "eps" not in seen["traced"]
    jax.jit(lambda: probe(0.0))()
    assert "eps" in seen["traced"]


def test_network_with_zero_parameters_identical():
    def net(e, b2):
        layers = (nrt.GrFNN(FREQS, alpha=0.0, beta2=b2, eps=e), nrt.GrFNN(FREQS, alpha=-0.5, beta2=b2, eps=e))
        return nrt.Network(layers, (nrt.models.connect(layers, 0, 1, coupling="1freq", strength=0.3),))

    model = net(0.0, 0.0)
    run = jax.jit(lambda m: _ys(m))
    general = run(model)
    fixed = run(with_static_zeros(model))
    assert isinstance(with_static_zeros(model).layers[1].eps, float)
    for a, b in zip(jax.tree_util.tree_leaves(fixed), jax.tree_util.tree_leaves(general)):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def _child_flags(code: str, xla_flags: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1]


def test_cpu_flags_reach_a_users_own_jit():
    """Importing nrtjax before any JAX computation puts CPU_COMPILER_OPTIONS into XLA_FLAGS;
    a flag the user set is left alone; after JAX has started a backend nothing changes."""
    show = "import os, nrtjax; print(repr(os.environ.get('XLA_FLAGS')))"
    assert _child_flags(show, None) == repr("--xla_cpu_prefer_vector_width=512")
    assert _child_flags(show, "--xla_cpu_prefer_vector_width=256") == repr("--xla_cpu_prefer_vector_width=256")
    assert _child_flags(show, "--xla_cpu_enable_fast_math=false") == repr(
        "--xla_cpu_enable_fast_math=false --xla_cpu_prefer_vector_width=512")
    late = "import os, jax; jax.numpy.ones(1); import nrtjax; print(repr(os.environ.get('XLA_FLAGS')))"
    assert _child_flags(late, None) == repr(None)
