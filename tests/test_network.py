import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.models import connect, farey_ratio, kernel_matrix


def _layers():
    l1 = nrt.GrFNN(np.array([1.0, 2.0, 3.0]), alpha=0.1, beta1=-1.0, beta2=-0.5, eps=0.7)
    l2 = nrt.GrFNN(np.array([1.5, 4.0]), alpha=-0.2, beta1=-2.0, beta2=-1.0, eps=0.9,
                   input="active")
    return (l1, l2)


def test_farey_and_kernels():
    assert farey_ratio(1.5) == (3, 2)
    assert farey_ratio(2.0) == (2, 1)
    assert farey_ratio(1.0) == (1, 1)
    assert farey_ratio(2 ** (7 / 12)) == (3, 2)  # an equal-tempered fifth within 0.01
    a, b = farey_ratio(np.pi, tol=1e-3)
    assert abs(a / b - np.pi) <= 1e-3
    f = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(kernel_matrix(f, f, "nearest"), np.eye(3))
    g = kernel_matrix(f, f, "gaussian", sigma=1.0)
    np.testing.assert_allclose(g[0, 1], np.exp(-0.5), rtol=1e-12)
    with pytest.raises(ValueError, match="kernel"):
        kernel_matrix(f, f, "box")


def test_single_layer_network_equals_grfnn():
    layer = _layers()[0]
    sig = nrt.metronome(1.0, 3.0, 32.0, amplitude=0.2)
    a = nrt.simulate(layer, sig, dt=1 / 32).ys
    b = nrt.simulate(nrt.Network((layer,)), sig, dt=1 / 32).ys.z[0]
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-14)


def _np_A(z, eps):
    return 1 / (1 - np.sqrt(eps) * np.conj(z))


def _np_P(x, eps):
    return x / (1 - np.sqrt(eps) * x)


@pytest.mark.parametrize("coupling", ["1freq", "2freq", "all2freq", "allfreq", "active"])
def test_connection_input_and_hebbian_match_equations(coupling):
    layers = _layers()
    rng = np.random.default_rng(2)
    c0 = 0.3 * (rng.normal(size=(2, 3)) + 1j * rng.normal(size=(2, 3)))
    learn = (-0.5, -1.0, -0.3, 0.6, 0.8)
    con = connect(layers, 0, 1, coupling=coupling, c0=c0, weight=0.9, learn=learn)
    y = 0.5 * np.exp(1j * np.array([0.3, 1.1, -2.0]))
    z = 0.4 * np.exp(1j * np.array([0.5, -0.7]))
    ft, fsrc = np.array([1.5, 4.0]), np.array([1.0, 2.0, 3.0])
    e_src, e_tgt = 0.7, 0.9
    w = 0.9 * ft
    if coupling == "1freq":
        want = w * (c0 @ y)
    elif coupling == "2freq":
        want = np.zeros(2, complex)
        for i in range(2):
            for j in range(3):
                n, m = farey_ratio(ft[i] / fsrc[j])
                want[i] += c0[i, j] * np.sqrt(e_src) ** (n + m - 2) * y[j] ** n * np.conj(z[i]) ** (m - 1)
        want = w * want
    elif coupling == "active":
        want = w * (c0 @ y) * _np_A(z, e_tgt)
    elif coupling == "all2freq":
        want = w * (c0 @ _np_P(y, e_tgt)) * _np_A(z, e_tgt)
    else:
        pn = _np_P(y, e_tgt) / (1 - np.sqrt(e_tgt) * np.conj(y))
        want = w * (c0 @ pn) * _np_A(z, e_tgt)
    got = con.input(jnp.asarray(y), jnp.asarray(z), jnp.asarray(c0), jnp.asarray(e_src), jnp.asarray(e_tgt))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)

    # Hebbian rule (Toolbox cdot.m) with pair frequencies F (log grid).
    lam, mu1, mu2, eps, kappa = learn
    F1, F2 = np.meshgrid(fsrc, ft)
    X = np.zeros((2, 3), complex)
    N = np.ones((2, 3), int)
    D = np.ones((2, 3), int)
    for i in range(2):
        for j in range(3):
            N[i, j], D[i, j] = farey_ratio(ft[i] / fsrc[j])
    if coupling == "1freq":
        F = (F1 + F2) / 2
        X = np.outer(z, np.conj(y))
    elif coupling == "2freq":
        F = (N * F1 + D * F2) / (N + D)
        X = np.sqrt(eps) ** (N + D - 2) * z[:, None] ** D * np.conj(y)[None, :] ** N
    else:
        F = 2 * F1 * F2 / (F1 + F2)
        if coupling == "active":
            X = np.outer(_np_P(z, eps), np.conj(y))
        elif coupling == "all2freq":
            X = np.outer(_np_P(z, eps), _np_P(np.conj(y), eps))
        else:
            X = np.outer(_np_P(z, eps), _np_P(np.conj(y), eps) / (1 - np.sqrt(eps) * y))
    r2 = np.abs(c0) ** 2
    want_dc = c0 * F * (lam + mu1 * r2 + eps * mu2 * r2**2 / (1 - eps * r2)) + kappa * F * X
    got_dc = con.hebbian(jnp.asarray(c0), jnp.asarray(y), jnp.asarray(z))
    np.testing.assert_allclose(np.asarray(got_dc), want_dc, rtol=1e-12)


def test_two_layer_learning_network_matches_numpy_rk4():
    l1 = nrt.GrFNN(np.array([1.0, 2.0]), alpha=0.05, beta1=-1.0, beta2=0.0, eps=0.5)
    l2 = nrt.GrFNN(np.array([1.0, 2.0]), alpha=-0.1, beta1=-1.0, beta2=0.0, eps=0.5)
    layers = (l1, l2)
    c0 = np.full((2, 2), 0.1 + 0j)
    learn = (-0.2, -1.0, 0.0, 0.5, 0.5)
    net = nrt.Network(layers, (connect(layers, 0, 1, c0=c0, learn=learn),))
    sig = nrt.metronome(1.0, 2.0, 50.0, amplitude=0.3)
    traj = nrt.simulate(net, sig, dt=1 / 50)

    f = np.array([1.0, 2.0])
    F = (f[None, :] + f[:, None]) / 2

    def field(z1, z2, c, x):
        d1 = z1 * (0.05 * f + 2j * np.pi * f - f * np.abs(z1) ** 2) + f * x
        d2 = z2 * (-0.1 * f + 2j * np.pi * f - f * np.abs(z2) ** 2) + f * (c @ z1)
        dc = c * F * (-0.2 - np.abs(c) ** 2) + 0.5 * F * np.outer(z2, np.conj(z1))
        return d1, d2, dc

    xs = np.asarray(sig.xs)
    h = 1 / 50
    z1 = np.full(2, 0.01 + 0j)
    z2 = z1.copy()
    c = c0.copy()
    for k in range(len(xs) - 1):
        xm = (xs[k] + xs[k + 1]) / 2
        a = field(z1, z2, c, xs[k])
        b = field(z1 + h / 2 * a[0], z2 + h / 2 * a[1], c + h / 2 * a[2], xm)
        cc = field(z1 + h / 2 * b[0], z2 + h / 2 * b[1], c + h / 2 * b[2], xm)
        d = field(z1 + h * cc[0], z2 + h * cc[1], c + h * cc[2], xs[k + 1])
        z1, z2, c = (v + h / 6 * (a_ + 2 * b_ + 2 * c_ + d_)
                     for v, a_, b_, c_, d_ in zip((z1, z2, c), a, b, cc, d))
    np.testing.assert_allclose(np.asarray(traj.ys.z[0][-1]), z1, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(traj.ys.z[1][-1]), z2, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(traj.ys.c[0][-1]), c, rtol=1e-10)


def test_internal_connection_has_no_self_coupling_and_bad_layers_fail():
    layers = _layers()
    con = connect(layers, 0, 0, kernel="full", learn=(0.0, -1.0, 0.0, 0.5, 1.0))
    assert np.all(np.diag(np.asarray(con.c0)) == 0)
    with pytest.raises(ValueError, match="missing layer"):
        nrt.Network(layers[:1], (connect(layers, 0, 1),))
    with pytest.raises(ValueError, match="coupling"):
        connect(layers, 0, 1, coupling="3freq")
