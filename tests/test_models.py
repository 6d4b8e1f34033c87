import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.analysis import instantaneous_frequency


@pytest.mark.parametrize("alpha, beta, f", [(0.5, -1.0, 1.0), (1.0, -4.0, 2.5)])
def test_hopf_limit_cycle_amplitude_and_frequency(alpha, beta, f):
    traj = nrt.simulate(nrt.Hopf(f, alpha, beta), nrt.silence(30.0, 200.0), dt=0.005)
    z = traj.ys[-500:]
    np.testing.assert_allclose(np.asarray(jnp.abs(z)), np.sqrt(-alpha / beta), rtol=1e-6)
    freq = instantaneous_frequency(jnp.angle(z), 0.005)
    np.testing.assert_allclose(np.asarray(freq[5:-5]), f, rtol=1e-6)


def _numpy_grfnn_field(z, x, f, alpha, b1, b2, d1, d2, eps, w, input, scale):
    a = alpha * scale + 2j * np.pi * f
    B1 = (b1 + 1j * d1) * scale
    B2 = (b2 + 1j * d2) * scale
    r2 = np.abs(z) ** 2
    se = np.sqrt(eps)
    A = 1 / (1 - se * np.conj(z))
    if input == "linear":
        drive = x
    elif input == "active":
        drive = x * A
    elif input == "all2freq":
        drive = x / (1 - se * x) * A
    else:
        drive = x / ((1 - se * x) * (1 - se * np.conj(x))) * A
    return z * (a + B1 * r2 + eps * B2 * r2**2 / (1 - eps * r2)) + scale * w * drive


@pytest.mark.parametrize("input", ["linear", "active", "allfreq", "all2freq"])
@pytest.mark.parametrize("spacing", ["log", "lin"])
def test_grfnn_vector_field_matches_equations(input, spacing):
    rng = np.random.default_rng(1)
    f = np.array([0.7, 1.3, 2.9])
    z = 0.4 * (rng.normal(size=3) + 1j * rng.normal(size=3))
    x = 0.3 * np.exp(0.7j)
    p = dict(alpha=0.2, beta1=-1.3, beta2=-0.7, delta1=0.4, delta2=-0.2, eps=0.8)
    net = nrt.GrFNN(f, **p, input=input, weight=1.7, spacing=spacing)
    sig = nrt.Signal(np.array([0.0, 1.0]), np.array([x, x]))
    got = np.asarray(net(0.5, jnp.asarray(z), sig))
    scale = f if spacing == "log" else np.ones(3)
    want = _numpy_grfnn_field(z, x, f, p["alpha"], p["beta1"], p["beta2"], p["delta1"], p["delta2"],
                              p["eps"], 1.7, input, scale)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_grfnn_field_derivatives_match_finite_differences():
    """First and second derivatives of the field (the quintic term has its own jvp rule)
    against central differences of the NumPy field above."""
    f = np.array([0.7, 1.3, 2.9])
    z = np.array([0.5 + 0.3j, -0.2 + 0.6j, 0.1 - 0.7j])
    x = 0.3 * np.exp(0.7j)
    p = dict(alpha=0.2, beta1=-1.3, beta2=-0.7, delta1=0.4, delta2=-0.2, eps=0.8)
    sig = nrt.Signal(np.array([0.0, 1.0]), np.array([x, x]))

    def field(q, zz):
        args = dict(p, **q)
        return _numpy_grfnn_field(zz, x, f, args["alpha"], args["beta1"], args["beta2"], args["delta1"],
                                  args["delta2"], args["eps"], 1.0, "active", f)

    def ours(q, zz):
        return nrt.GrFNN(f, **dict(p, **q), input="active")(0.5, zz, sig)

    h = 1e-6
    for name in ("beta2", "delta2", "eps"):
        got = jax.jacfwd(lambda v, n=name: ours({n: v}, jnp.asarray(z)))(p[name])
        fd = (field({name: p[name] + h}, z) - field({name: p[name] - h}, z)) / (2 * h)
        np.testing.assert_allclose(np.asarray(got), fd, rtol=1e-7, atol=1e-9)
        rev = jax.grad(lambda v, n=name: jnp.sum(jnp.abs(ours({n: v}, jnp.asarray(z))) ** 2))(p[name])
        fd = (np.sum(np.abs(field({name: p[name] + h}, z)) ** 2)
              - np.sum(np.abs(field({name: p[name] - h}, z)) ** 2)) / (2 * h)
        np.testing.assert_allclose(float(rev), fd, rtol=1e-7)
    for dz in (1.0, 1j):  # along the real and the imaginary axis of every state
        got = jax.jvp(lambda zz: ours({}, zz), (jnp.asarray(z),), (jnp.full(3, dz, dtype=jnp.complex128),))[1]
        fd = (field({}, z + h * dz) - field({}, z - h * dz)) / (2 * h)
        np.testing.assert_allclose(np.asarray(got), fd, rtol=1e-7, atol=1e-9)
    h2 = 1e-4
    got = jax.jacfwd(jax.jacfwd(lambda v: ours({"eps": v}, jnp.asarray(z))))(p["eps"])
    fd = (field({"eps": p["eps"] + h2}, z) - 2 * field({}, z) + field({"eps": p["eps"] - h2}, z)) / h2**2
    np.testing.assert_allclose(np.asarray(got), fd, rtol=1e-5, atol=1e-7)


def test_grfnn_domain_guard_and_construction_errors():
    net = nrt.GrFNN(np.array([1.0]), eps=1.0)
    assert np.isnan(np.asarray(net(0.0, jnp.array([1.2 + 0j]), None))).all()
    with pytest.raises(ValueError, match="input must be one of"):
        nrt.GrFNN(np.array([1.0]), input="bogus")
    with pytest.raises(ValueError, match="eps must lie in"):
        nrt.GrFNN(np.array([1.0]), eps=1.5)
    with pytest.raises(ValueError, match="spacing"):
        nrt.GrFNN(np.array([1.0]), spacing="mel")
    with pytest.raises(ValueError, match="fmin"):
        nrt.log_freqs(2.0, 1.0, 10)


def test_models_constructible_with_traced_parameters():
    sig = nrt.metronome(1.0, 1.0, 20.0, amplitude=0.1)

    def final(a, lam):
        g = nrt.simulate(nrt.GrFNN(np.array([1.0, 2.0]), alpha=a, eps=a * 0 + 0.5), sig, dt=0.05).ys[-1]
        s = nrt.simulate(nrt.ASHLE(f0=1.0, lambda1=lam), sig, dt=0.05).ys
        return jnp.sum(jnp.abs(g)) + s.f[-1]

    out = jax.jit(jax.vmap(jax.grad(final, argnums=(0, 1))))(jnp.array([0.1, -0.1]), jnp.array([2.0, 4.0]))
    assert all(np.all(np.isfinite(np.asarray(o))) for o in out)


def test_ashle_and_lorenz_states():
    a = nrt.ASHLE(f0=2.0)
    y0 = a.initial_state()
    assert isinstance(y0, nrt.ASHLEState)
    assert complex(y0.d) == pytest.approx(0.01) and float(y0.f) == 2.0
    # The guarded divisions give a finite field at d = z = 0.
    zero = nrt.ASHLEState(jnp.array(0j), jnp.array(2.0), jnp.array(0j), jnp.array(2.0))
    dy = a(0.0, zero, nrt.metronome(2.0, 1.0, 10.0))
    assert all(np.isfinite(np.asarray(v)).all() for v in dy)
    assert nrt.Lorenz().initial_state().shape == (3,)
