import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.analysis.stability import driven_steady_states, spontaneous_amplitudes


@pytest.mark.parametrize(
    "alpha, beta1, beta2, eps",
    [(0.5, -1.0, -1.0, 1.0), (-0.2, 2.0, -1.0, 0.5), (0.3, -1.0, 0.0, 0.0), (-1.0, -1.0, -1.0, 1.0),
     (-0.1, 1.5, -2.0, 0.8)],
)
def test_spontaneous_amplitudes_equal_numpy_roots(alpha, beta1, beta2, eps):
    r, valid, stable = (np.asarray(v) for v in spontaneous_amplitudes(alpha, beta1, beta2, eps))
    # r G(r) (1 - eps r^2) = r [alpha + (beta1 - alpha eps) r^2 + eps (beta2 - beta1) r^4]
    roots = np.roots([eps * (beta2 - beta1), 0, beta1 - alpha * eps, 0, alpha])
    want = sorted(x.real for x in roots if abs(x.imag) < 1e-9 and x.real > 0 and eps * x.real**2 < 1)
    got = sorted(r[1:][valid[1:]])
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # The largest stable amplitude is where a simulation from a large start settles.
    if stable.any():
        target = r[stable].max()
        hopf = nrt.GrFNN(np.array([1.0]), alpha=alpha, beta1=beta1, beta2=beta2, eps=eps)
        start = min(0.9 / np.sqrt(eps), 2.0) if eps > 0 else 2.0
        traj = nrt.simulate(hopf, nrt.silence(40.0, 200.0), dt=0.005, y0=start)
        assert float(jnp.abs(traj.ys[-1, 0])) == pytest.approx(target, abs=1e-6)


def test_spontaneous_amplitude_gradient():
    # With beta2 = 0: r* = sqrt(-alpha/beta1), dr*/dalpha = 1/(2 r* (-beta1)).
    g = jax.grad(lambda a: spontaneous_amplitudes(a, -2.0, 0.0, 1.0)[0].max())(0.5)
    assert float(g) == pytest.approx(1 / (2 * 0.5 * 2.0), rel=1e-10)


def test_driven_critical_oscillator():
    states = driven_steady_states(1.0, 1.0, 0.25, alpha=0.0, beta1=-1.0, beta2=-1.0, eps=1.0)
    stable = [s for s in states if s["stable"]]
    assert len(stable) == 1
    assert stable[0]["r"] == pytest.approx(0.5566931, abs=1e-7)


def test_driven_detuned_states_match_simulation():
    f, fs, F = 1.0, 1.1, 0.3
    kw = dict(alpha=-0.3, beta1=-1.0, beta2=-1.0, delta1=0.2, eps=0.5)
    states = driven_steady_states(f, fs, F, **kw)
    stable = [s for s in states if s["stable"]]
    assert stable
    net = nrt.GrFNN(np.array([f]), **kw)
    traj = nrt.simulate(net, nrt.metronome(fs, 80.0, 200.0, amplitude=F), dt=1 / 200)
    r_end = float(jnp.abs(traj.ys[-1, 0]))
    assert min(abs(s["r"] - r_end) for s in stable) < 1e-3
    psi = float(jnp.angle(traj.ys[-1, 0] * np.exp(-2j * np.pi * fs * 80.0)))
    best = min(stable, key=lambda s: abs(s["r"] - r_end))
    assert np.cos(psi - best["psi"]) > 0.9999
