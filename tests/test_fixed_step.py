"""The reverse-mode derivative of fixed-step RK4 runs of elementwise models.

Oracles: finite differences; reverse mode through `diffrax.diffeqsolve`
(`RecursiveCheckpointAdjoint`); plain reverse mode through the same scan (`PlainRK4`, the
same steps under another class, so the adjoint is not used). None shares derivative code
with the adjoint under test.
"""

from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax._fixed_step import elementwise_ok

FS = 32.0
FREQS = nrt.log_freqs(0.5, 4.0, 5)
SIG = nrt.metronome(1.3, 3.0, FS, amplitude=0.3)


class PlainRK4(nrt.RK4):
    """nrt.RK4 under another name: the fast path differentiates it by plain reverse mode."""


class Logistic(nrt.AbstractModel):
    """A real-state elementwise model: dy/dt = r y (1 - y / k) + x(t)."""

    elementwise: ClassVar[bool] = True
    r: jax.Array
    k: jax.Array

    def __call__(self, t, y, args):
        return self.r * y * (1 - y / self.k) + jnp.real(args.evaluate(t))

    def initial_state(self):
        return jnp.full(self.r.shape, 0.1)


def _loss(model, y0, signal, saveat, adjoint=None, solver=nrt.RK4()):
    ys = nrt.simulate(model, signal, dt=1 / FS, y0=y0, saveat=saveat, adjoint=adjoint,
                      solver=solver).ys
    weights = jnp.linspace(0.5, 1.5, ys.shape[0]).reshape((-1,) + (1,) * (ys.ndim - 1))
    return jnp.sum(weights * jnp.abs(ys) ** 2) + jnp.sum(jnp.real(ys) * jnp.imag(ys))


def _grads(model, y0, saveat, adjoint=None, solver=nrt.RK4()):
    return eqx.filter_grad(lambda d: _loss(d[0], d[1], SIG, saveat, adjoint, solver))((model, y0))


SAVES = {
    "every step": None,
    "from step 10": np.arange(10, 97) / FS,
    "every 5th from step 7": np.arange(7, 97, 5) / FS,
}


@pytest.mark.parametrize(("input", "save", "reference"), [
    ("allfreq", "every 5th from step 7", "diffeqsolve"), ("linear", "from step 10", "scan"),
])
def test_grfnn_gradient_matches_plain_reverse_mode(input, save, reference):
    net = nrt.GrFNN(FREQS, alpha=-0.2, beta1=-1.0, beta2=-0.5, delta1=0.3, delta2=0.1, eps=0.8,
                    input=input, weight=0.7)
    y0 = jnp.asarray(np.linspace(0.1, 0.3, FREQS.size) * np.exp(1j * np.arange(FREQS.size)))
    assert elementwise_ok(net, nrt.RK4(), y0)
    fast = _grads(net, y0, SAVES[save])
    if reference == "diffeqsolve":
        ref = _grads(net, y0, SAVES[save], diffrax.RecursiveCheckpointAdjoint())
    else:
        assert not elementwise_ok(net, PlainRK4(), y0)
        ref = _grads(net, y0, SAVES[save], solver=PlainRK4())
    for a, b in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)


def test_grfnn_gradient_matches_finite_differences():
    def loss(p):
        net = nrt.GrFNN(FREQS, alpha=p[0], beta1=p[1], beta2=-1.0, eps=p[2], input="active")
        return _loss(net, None, SIG, SAVES["every 5th from step 7"])

    p = jnp.array([-0.1, -0.8, 0.6])
    g = jax.grad(loss)(p)
    h = 1e-6
    fd = [(loss(p.at[i].add(h)) - loss(p.at[i].add(-h))) / (2 * h) for i in range(p.size)]
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-6)


def test_real_state_and_vector_parameters():
    model = Logistic(r=jnp.array([0.5, 1.0, 2.0]), k=jnp.array(1.5))
    y0 = jnp.array([0.1, 0.2, 0.4])
    assert elementwise_ok(model, nrt.RK4(), y0)
    fast = _grads(model, y0, SAVES["from step 10"])
    ref = _grads(model, y0, SAVES["from step 10"], solver=PlainRK4())
    for a, b in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10)
    h = 1e-6
    k_fd = (_loss(Logistic(model.r, model.k + h), y0, SIG, None)
            - _loss(Logistic(model.r, model.k - h), y0, SIG, None)) / (2 * h)
    assert float(_grads(model, y0, None)[0].k) == pytest.approx(float(k_fd), rel=1e-6)


def test_hopf_bank_and_input_signal_gradient():
    bank = nrt.Hopf(jnp.array([0.8, 1.3]), alpha=jnp.array([0.2, -0.1]), beta=-1.0)

    def loss(xs, solver=nrt.RK4()):
        return _loss(bank, None, nrt.Signal(SIG.ts, xs), None, solver=solver)

    g = jax.grad(loss)(SIG.xs)
    ref = jax.grad(lambda xs: loss(xs, PlainRK4()))(SIG.xs)
    np.testing.assert_allclose(np.asarray(g), np.asarray(ref), rtol=1e-9, atol=1e-12)


def test_vmapped_gradients_equal_a_loop():
    def loss(alpha):
        return _loss(nrt.GrFNN(FREQS, alpha=alpha), None, SIG, None)

    alphas = jnp.array([-0.5, -0.1, 0.1])
    batched = jax.vmap(jax.grad(loss))(alphas)
    looped = [jax.grad(loss)(a) for a in alphas]
    np.testing.assert_allclose(np.asarray(batched), np.asarray(looped), rtol=1e-12)


def test_which_runs_take_the_elementwise_adjoint():
    y0 = jnp.zeros(FREQS.size, jnp.complex128)
    net = nrt.GrFNN(FREQS)
    assert elementwise_ok(net, nrt.RK4(), y0)
    assert not elementwise_ok(net, diffrax.Tsit5(), y0)
    assert not elementwise_ok(nrt.ASHLE(), nrt.RK4(), nrt.ASHLE().initial_state())
    layer = nrt.Network([nrt.GrFNN(FREQS)], [])
    assert not elementwise_ok(layer, nrt.RK4(), layer.initial_state())
    wide = Logistic(r=jnp.ones((2, 2)), k=jnp.array(1.0))
    assert not elementwise_ok(wide, nrt.RK4(), jnp.ones(2))


def test_forward_mode_through_diffeqsolve():
    def final(alpha):
        net = nrt.GrFNN(FREQS, alpha=alpha)
        return nrt.simulate(net, SIG, dt=1 / FS, adjoint=diffrax.ForwardMode()).ys[-1]

    _, tangent = jax.jvp(final, (jnp.array(-0.1),), (jnp.array(1.0),))
    h = 1e-6
    fd = (final(-0.1 + h) - final(-0.1 - h)) / (2 * h)
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(fd), rtol=1e-6, atol=1e-10)
