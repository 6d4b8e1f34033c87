import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import nrtjax as nrt

from .helpers import max_abs_diff


class Decay(nrt.AbstractModel):
    rate: jax.Array

    def __call__(self, t, y, args):
        return -self.rate * y + jnp.sin(t)

    def initial_state(self):
        return jnp.ones((), dtype=self.rate.dtype)


def _exact(t):
    return 1.5 * np.exp(-t) + 0.5 * (np.sin(t) - np.cos(t))


def test_rk4_is_fourth_order():
    errs = []
    for fs in (20.0, 40.0, 80.0):
        traj = nrt.simulate(Decay(jnp.array(1.0)), nrt.silence(2.0, fs), dt=1 / fs)
        errs.append(abs(float(traj.ys[-1]) - _exact(2.0)))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 3.7) and np.all(orders < 4.3), orders


def _grfnn(n=5, **kw):
    return nrt.GrFNN(nrt.log_freqs(0.5, 2.0, n), **{"alpha": 0.0, "beta1": -1.0, "beta2": -1.0, "eps": 1.0, **kw})


def _numpy_rk4_toolbox(freqs, alpha, beta1, beta2, eps, xs, fs, z0):
    """Toolbox odeRK4fs convention written from the equations: half-step input = mean of
    the neighbouring samples; log-grid frequency scaling; linear input."""
    a = (alpha + 2j * np.pi) * freqs
    b1, b2 = beta1 * freqs, beta2 * freqs

    def f(z, x):
        r2 = np.abs(z) ** 2
        return z * (a + b1 * r2 + eps * b2 * r2**2 / (1 - eps * r2)) + freqs * x

    h = 1 / fs
    z = z0.copy()
    out = [z.copy()]
    for k in range(len(xs) - 1):
        xm = 0.5 * (xs[k] + xs[k + 1])
        k1 = f(z, xs[k])
        k2 = f(z + 0.5 * h * k1, xm)
        k3 = f(z + 0.5 * h * k2, xm)
        k4 = f(z + h * k3, xs[k + 1])
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(z.copy())
    return np.array(out)


def test_matches_numpy_toolbox_rk4():
    net = _grfnn(alpha=0.1)
    sig = nrt.metronome(1.0, 5.0, 40.0, amplitude=0.25)
    traj = nrt.simulate(net, sig, dt=1 / 40)
    ref = _numpy_rk4_toolbox(np.asarray(net.freqs), 0.1, -1.0, -1.0, 1.0, np.asarray(sig.xs), 40.0,
                             np.full(5, 0.01 + 0j))
    np.testing.assert_allclose(np.asarray(traj.ys), ref, rtol=1e-10, atol=1e-12)


def test_critical_oscillator_steady_state():
    # Kim & Large 2015: r* solves r^3 + r^5/(1-r^2) = 0.25 -> 0.5566931; with 40 Hz samples
    # and the Toolbox's half-step averaging, 0.5564005.
    net = nrt.GrFNN(np.array([1.0]), alpha=0.0, beta1=-1.0, beta2=-1.0, eps=1.0)
    traj = nrt.simulate(net, nrt.metronome(1.0, 200.0, 40.0, amplitude=0.25), dt=1 / 40)
    assert float(jnp.abs(traj.ys[-1, 0])) == pytest.approx(0.5564005, abs=2e-7)
    # Finer sampling approaches the analytic value.
    traj = nrt.simulate(net, nrt.metronome(1.0, 400.0, 1000.0, amplitude=0.25), dt=1 / 1000)
    assert float(jnp.abs(traj.ys[-1, 0])) == pytest.approx(0.5566931, abs=2e-6)


def test_fast_path_identical_to_diffeqsolve():
    net = _grfnn(alpha=-0.2, delta1=0.3)
    sig = nrt.metronome(1.2, 4.0, 64.0, amplitude=0.3)
    fast = nrt.simulate(net, sig, dt=1 / 64)
    slow = nrt.simulate(net, sig, dt=1 / 64, adjoint=diffrax.RecursiveCheckpointAdjoint())
    assert fast.ys.shape == slow.ys.shape == (257, 5)
    assert max_abs_diff(fast.ys, slow.ys) < 1e-14
    np.testing.assert_allclose(np.asarray(fast.ts), np.asarray(slow.ts), atol=1e-14)


def test_adaptive_matches_scipy():
    hopf = nrt.Hopf(jnp.array([1.0, 1.7]), alpha=jnp.array([0.5, -0.3]), beta=-1.0)
    sig = nrt.metronome(1.3, 6.0, 50.0, amplitude=0.4)
    save = np.linspace(0.0, 6.0, 31)
    traj = nrt.simulate(hopf, sig, dt=0.01, solver=diffrax.Tsit5(), saveat=save,
                        stepsize_controller=diffrax.PIDController(rtol=1e-9, atol=1e-11))
    ts, xs = np.asarray(sig.ts), np.asarray(sig.xs)
    f, al = np.array([1.0, 1.7]), np.array([0.5, -0.3])

    def rhs(t, y):
        z = y[:2] + 1j * y[2:]
        x = np.interp(t, ts, xs.real) + 1j * np.interp(t, ts, xs.imag)
        dz = z * (al + 2j * np.pi * f - np.abs(z) ** 2) + x
        return np.concatenate([dz.real, dz.imag])

    ref = scipy.integrate.solve_ivp(rhs, (0, 6), np.array([0.01, 0.01, 0, 0]), t_eval=save,
                                    rtol=1e-10, atol=1e-12, max_step=0.02)
    got = np.asarray(traj.ys)
    np.testing.assert_allclose(got.real, ref.y[:2].T, atol=2e-6)
    np.testing.assert_allclose(got.imag, ref.y[2:].T, atol=2e-6)
    np.testing.assert_allclose(np.asarray(traj.ts), save, atol=1e-12)


def test_y0_options_and_errors():
    net = _grfnn()
    sig = nrt.silence(1.0, 10.0)
    a = nrt.simulate(net, sig, dt=0.1, y0=0.2)
    assert np.allclose(np.asarray(a.ys[0]), 0.2)
    with pytest.raises(ValueError, match="does not divide"):
        nrt.simulate(net, sig, dt=0.3)
    with pytest.raises(ValueError, match="positive"):
        nrt.simulate(net, sig, dt=-0.1)
    with pytest.raises(ValueError, match="structure"):
        nrt.simulate(nrt.ASHLE(), sig, dt=0.1, y0=(1.0, 2.0))
    with pytest.raises(TypeError, match="Signal"):
        nrt.simulate(net, np.zeros(10), dt=0.1)


def test_divergence_names_model_time_and_fix():
    net = nrt.GrFNN(np.array([1.0, 2.0]), alpha=1.0, beta1=1.0, beta2=1.0, eps=1.0)
    sig = nrt.metronome(1.0, 20.0, 40.0, amplitude=0.25)
    with pytest.raises(nrt.SimulationDivergedError, match=r"GrFNN diverged at t = [0-9.]+ s.*Fix"):
        nrt.simulate(net, sig, dt=1 / 40)
    # The time in the message is the first non-finite saved state, found here by NumPy.
    traj = nrt.simulate(net, sig, dt=1 / 40, throw=False)
    assert not bool(traj.ok)
    first = int(np.argmax(~np.all(np.isfinite(np.asarray(traj.ys)), axis=1)))
    with pytest.raises(nrt.SimulationDivergedError, match=f"t = {float(traj.ts[first]):.6g} s"):
        nrt.simulate(net, sig, dt=1 / 40)
    # With sparse saves, a divergence between two saved times is still flagged.
    assert not bool(nrt.simulate(net, sig, dt=1 / 40, saveat=[0.0, 10.0, 20.0], throw=False).ok)
    # Under vmap with throw=False the sweep finishes and flags the bad member only.
    alphas = jnp.array([-1.0, 1.0, -2.0])
    res = jax.vmap(lambda a: nrt.simulate(
        nrt.GrFNN(np.array([1.0, 2.0]), alpha=a, beta1=1.0, beta2=1.0, eps=1.0), sig,
        dt=1 / 40, throw=False).ok)(alphas)
    np.testing.assert_array_equal(np.asarray(res), [True, False, True])
    # Under an outer jit the error still stops the computation.
    with pytest.raises(Exception, match="diverged"):
        jax.block_until_ready(jax.jit(lambda: nrt.simulate(net, sig, dt=1 / 40).ys)())


def test_hopf_gradient_matches_analytic():
    # |z*|^2 = -alpha/beta, so d|z*|^2/dalpha = -1/beta.
    sig = nrt.silence(40.0, 100.0)

    def settled(alpha, beta):
        traj = nrt.simulate(nrt.Hopf(1.0, alpha, beta), sig, dt=0.01)
        return jnp.abs(traj.ys[-1]) ** 2

    g = jax.grad(settled)(0.5, -2.0)
    assert float(g) == pytest.approx(0.5, rel=1e-5)
    assert float(settled(0.5, -2.0)) == pytest.approx(0.25, rel=1e-6)


@pytest.mark.parametrize("adjoint", [None, diffrax.RecursiveCheckpointAdjoint()])
def test_grfnn_gradient_matches_finite_differences(adjoint):
    sig = nrt.metronome(1.1, 3.0, 32.0, amplitude=0.3)

    def loss(p):
        net = _grfnn(alpha=p[0], beta1=p[1], n=4)
        traj = nrt.simulate(net, sig, dt=1 / 32, adjoint=adjoint)
        return jnp.sum(jnp.abs(traj.ys[-1]) ** 2)

    p = jnp.array([-0.1, -0.8])
    g = jax.grad(loss)(p)
    h = 1e-6
    fd = [(loss(p.at[i].add(h)) - loss(p.at[i].add(-h))) / (2 * h) for i in range(2)]
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-6)


def test_float32_is_preserved():
    net = nrt.GrFNN(np.array([1.0], dtype=np.float32), alpha=0.0, beta1=-1.0, beta2=-1.0, eps=1.0)
    sig = nrt.Signal.sampled(jnp.asarray(np.asarray(nrt.metronome(1.0, 100.0, 40.0, 0.25).xs), jnp.complex64), 40.0)
    traj = nrt.simulate(net, sig, dt=1 / 40)
    assert traj.ys.dtype == jnp.complex64
    assert float(jnp.abs(traj.ys[-1, 0])) == pytest.approx(0.5564005, abs=1e-4)


def test_vmap_sweep_equals_loop_and_no_retrace():
    sig = nrt.metronome(1.0, 2.0, 32.0, amplitude=0.2)
    freqs = nrt.log_freqs(0.5, 2.0, 6)
    alphas = jnp.array([-0.5, 0.0, 0.3])
    sweep = jax.vmap(lambda a: nrt.simulate(nrt.GrFNN(freqs, alpha=a), sig, dt=1 / 32).ys[-1])(alphas)
    for i, a in enumerate(alphas):
        one = nrt.simulate(nrt.GrFNN(freqs, alpha=a), sig, dt=1 / 32).ys[-1]
        np.testing.assert_allclose(np.asarray(sweep[i]), np.asarray(one), atol=1e-13)

    @eqx.debug.assert_max_traces(max_traces=1)
    def run(a):
        return nrt.simulate(nrt.GrFNN(freqs, alpha=a), sig, dt=1 / 32).ys[-1]

    jitted = eqx.filter_jit(run)
    for a in (0.1, 0.2, 0.3):
        jitted(jnp.asarray(a))


def test_strided_saveat_uses_fast_path_and_matches():
    net = _grfnn(alpha=-0.1)
    sig = nrt.metronome(1.0, 4.0, 32.0, amplitude=0.3)
    full = nrt.simulate(net, sig, dt=1 / 32)
    save = np.arange(3, 129, 8) / 32.0
    sub = nrt.simulate(net, sig, dt=1 / 32, saveat=save)
    np.testing.assert_allclose(np.asarray(sub.ys), np.asarray(full.ys[3::8]), atol=1e-14)
    np.testing.assert_allclose(np.asarray(sub.ts), save, atol=1e-14)
    slow = nrt.simulate(net, sig, dt=1 / 32, saveat=save, adjoint=diffrax.RecursiveCheckpointAdjoint())
    np.testing.assert_allclose(np.asarray(slow.ys), np.asarray(sub.ys), atol=1e-12)
    last = nrt.simulate(net, sig, dt=1 / 32, saveat=[4.0])
    np.testing.assert_allclose(np.asarray(last.ys[0]), np.asarray(full.ys[-1]), atol=1e-14)
    with pytest.raises(ValueError, match="increasing"):
        nrt.simulate(net, sig, dt=1 / 32, saveat=[2.0, 1.0])


# --- zero-order hold of the input ------------------------------------------------------


class Linear(nrt.AbstractModel):
    """dy/dt = a y + u(t): with u held constant over a step, each step has a closed form."""

    a: jax.Array

    def __call__(self, t, y, args):
        return self.a * y + args.evaluate(t)

    def initial_state(self):
        return jnp.ones((), dtype=self.a.dtype)


def _held_steps(a, u, h, y0, gain):
    """y_{k+1} = g y_k + s u_k for u_k held over step k: g = gain(a h), s = (g - 1) / a."""
    g = gain(a * h)
    ys = [y0]
    for uk in u[:-1]:  # the last sample (at t1) is never read
        ys.append(g * ys[-1] + (g - 1) / a * uk)
    return np.asarray(ys)


def _rk4_gain(z):
    return 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24  # RK4's stability polynomial


def test_zero_hold_matches_the_exact_per_step_solution():
    fs, a = 100.0, -0.7 + 2j * np.pi * 1.3
    u = np.random.default_rng(0).normal(size=(101, 2)) @ np.array([1.0, 1j])
    sig = nrt.Signal.sampled(u, fs)
    model = Linear(jnp.asarray(a))
    exact = _held_steps(a, u, 1 / fs, 1.0, np.exp)
    # RK4 on a linear field with a constant input is exactly its stability polynomial.
    rk4 = _held_steps(a, u, 1 / fs, 1.0, _rk4_gain)
    for adjoint in (None, diffrax.RecursiveCheckpointAdjoint()):
        got = nrt.simulate(model, sig, dt=1 / fs, adjoint=adjoint, input_hold="zero").ys
        np.testing.assert_allclose(np.asarray(got), rk4, rtol=0, atol=1e-13)
        # A FSAL solver must not reuse a stage that saw the previous sample.
        tsit = nrt.simulate(model, sig, dt=1 / fs, solver=diffrax.Tsit5(), adjoint=adjoint,
                            input_hold="zero").ys
        np.testing.assert_allclose(np.asarray(tsit), exact, rtol=0, atol=1e-8)
    assert np.max(np.abs(np.asarray(got) - exact)) < 1e-5
    # The default reads the input linearly between samples, as before.
    linear = nrt.simulate(model, sig, dt=1 / fs).ys
    assert np.max(np.abs(np.asarray(linear) - exact)) > 1e-3
    np.testing.assert_array_equal(np.asarray(linear),
                                  np.asarray(nrt.simulate(model, sig, dt=1 / fs, input_hold="linear").ys))


def test_zero_hold_under_jit_vmap_and_grad():
    fs, a = 20.0, jnp.asarray(-1.1)
    us = np.random.default_rng(1).normal(size=(3, 41))

    @eqx.debug.assert_max_traces(max_traces=1)
    def final(a, u):
        return nrt.simulate(Linear(a), nrt.Signal.sampled(u, fs), dt=1 / fs,
                            input_hold="zero").ys[-1]

    jitted = eqx.filter_jit(final)
    batch = jax.vmap(jitted, in_axes=(None, 0))(a, jnp.asarray(us))
    for u, got in zip(us, batch):
        one = jitted(a, jnp.asarray(u))
        want = _held_steps(-1.1, u, 1 / fs, 1.0, _rk4_gain)[-1]
        assert float(one) == pytest.approx(want, abs=1e-14)
        assert float(got) == pytest.approx(want, abs=1e-14)
    g = jax.grad(jitted)(a, jnp.asarray(us[0]))
    h = 1e-6
    fd = (jitted(a + h, jnp.asarray(us[0])) - jitted(a - h, jnp.asarray(us[0]))) / (2 * h)
    assert float(g) == pytest.approx(float(fd), rel=1e-7)


def test_zero_hold_errors_name_the_fix():
    model, sig = Linear(jnp.asarray(-1.0)), nrt.silence(1.0, 10.0)
    with pytest.raises(ValueError, match="input_hold must be 'linear'.*got 'cubic'"):
        nrt.simulate(model, sig, dt=0.1, input_hold="cubic")
    with pytest.raises(ValueError, match="no stepsize_controller"):
        nrt.simulate(model, sig, dt=0.1, solver=diffrax.Tsit5(), input_hold="zero",
                     stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-8))
    with pytest.raises(ValueError, match="sample spacing 0.1 s, got dt=0.05.*dt=signal.dt"):
        nrt.simulate(model, sig, dt=0.05, input_hold="zero")
    uneven = nrt.Signal(np.array([0.0, 0.1, 0.3, 0.4]), np.zeros(4))
    with pytest.raises(ValueError, match="uniformly sampled"):
        nrt.simulate(model, uneven, dt=0.1, input_hold="zero")
    with pytest.raises(ValueError, match="BacksolveAdjoint"):
        nrt.simulate(model, sig, dt=0.1, input_hold="zero", adjoint=diffrax.BacksolveAdjoint())
