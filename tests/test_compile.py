"""nrtjax's own compiler options: same results as XLA's defaults, and every way of calling
`simulate` still compiles (JAX refuses compiler options on a staged or differentiated jit)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax._compile import _top_level, _tuned, filter_jit_tuned

FS = 64.0
FREQS = nrt.log_freqs(0.5, 4.0, 13)
SIG = nrt.metronome(2.0, 4.0, FS, amplitude=0.3)


def _run(alpha, **kw):
    return nrt.simulate(nrt.GrFNN(FREQS, alpha=alpha), SIG, dt=1 / FS, **kw).ys


@pytest.mark.parametrize("kw", [
    {},
    {"saveat": np.arange(64, 257, 64) / FS},
    {"adjoint": diffrax.RecursiveCheckpointAdjoint()},
    {"solver": diffrax.Tsit5(), "stepsize_controller": diffrax.PIDController(rtol=1e-8, atol=1e-8)},
])
def test_tuned_top_level_call_equals_default_compilation(kw):
    """A top-level call compiles with CPU_COMPILER_OPTIONS; under an outer jit given XLA's
    default (256-bit) vector width the same computation: bit-identical states."""
    assert _tuned(((nrt.GrFNN(FREQS, alpha=-0.1), SIG), kw))  # the top-level call takes the tuned jit
    tuned = _run(-0.1, **kw)
    default = jax.jit(lambda a: _run(a, **kw), compiler_options={"xla_cpu_prefer_vector_width": 256})(-0.1)
    assert tuned.dtype == default.dtype
    assert np.array_equal(np.asarray(tuned), np.asarray(default))


def test_every_transformation_of_simulate_compiles():
    def loss(a, **kw):
        return jnp.sum(jnp.abs(_run(a, **kw)[-1]) ** 2)

    adaptive = dict(solver=diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8))
    g = jax.grad(loss)(-0.1)
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(-0.1), g, rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(jax.grad(loss))(jnp.array([-0.1, 0.2]))[0], g, rtol=1e-12)
    g_adaptive = jax.grad(lambda a: loss(a, **adaptive))
    np.testing.assert_allclose(g_adaptive(-0.1), jax.jit(g_adaptive)(-0.1), rtol=1e-10)
    np.testing.assert_allclose(g_adaptive(-0.1), g, rtol=2e-3)  # RK4 at dt = 1/64 vs Tsit5
    np.testing.assert_allclose(
        jax.jvp(lambda a: loss(a, adjoint=diffrax.ForwardMode()), (-0.1,), (1.0,))[1], g, rtol=1e-12)
    scanned = jax.lax.scan(lambda c, a: (c, loss(a)), 0.0, jnp.array([-0.1]))[1]
    np.testing.assert_allclose(scanned[0], loss(-0.1), rtol=1e-14)
    assert jax.eval_shape(loss, -0.1).shape == ()
    swept = nrt.sharded_vmap(lambda a: _run(a)[-1])(jnp.array([-0.1, 0.2]))
    np.testing.assert_allclose(swept[1], _run(0.2)[-1], rtol=1e-14)


def test_top_level_detection():
    seen = {}

    def probe(x, name):
        seen[name] = _top_level((x,))
        return x

    probe(jnp.ones(2), "eager")
    jax.jit(lambda x: probe(x, "jit"))(jnp.ones(2))
    jax.jit(lambda: probe(jnp.ones(2), "jit, constant argument"))()
    jax.vmap(lambda x: probe(x, "vmap"))(jnp.ones(2))
    jax.grad(lambda x: probe(x, "grad").sum())(jnp.ones(2))
    jax.lax.scan(lambda c, x: (probe(c, "scan"), None), jnp.ones(2), jnp.arange(2))
    assert seen == {"eager": True, "jit": False, "jit, constant argument": False, "vmap": False,
                    "grad": False, "scan": False}


def test_filter_jit_tuned_compiles_once_per_mode():
    calls = []

    @filter_jit_tuned
    def f(x):
        calls.append(1)
        return 2 * x

    for _ in range(3):
        assert float(f(jnp.float64(1.5))) == 3.0
    assert len(calls) == 1
    assert float(jax.jit(f)(1.5)) == 3.0  # inlined: the untuned compilation, traced once more
    assert len(calls) == 2
