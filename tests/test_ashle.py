"""ASHLE against a NumPy forward-Euler integration of its equations, and its behaviours."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import nrtjax as nrt
from nrtjax.analysis import mean_asynchrony, metronome_onsets, tap_times

FS = 500.0


def numpy_euler(f0, period, duration, *, lambda1=4.0, lambda2=2.0, gamma=0.02, a=1.0, b=-1.0,
                forcing=1.0, fs=FS):
    """Forward Euler written directly from Roman et al. (2023), as in docs/concepts.md."""
    h = 1.0 / fs
    n = int(round(duration * fs))
    t = np.arange(n + 1) * h
    x = np.exp(2j * np.pi * t / period)
    d, fd, z, f = 0.01 + 0j, f0, 0.01 + 0j, f0
    out = np.empty((n + 1, 4), dtype=np.complex128)
    out[0] = d, fd, z, f
    for k in range(n):
        ud, uz = d / abs(d), z / abs(z)
        dd = fd * (d * (a + 2j * np.pi + b * abs(d) ** 2) + forcing * x[k])
        dfd = fd * (-lambda1 * np.real(1j * forcing * x[k] * np.conj(ud))
                    - gamma * (np.exp((fd - f) / f) - 1))
        dz = f * (z * (a + 2j * np.pi + b * abs(z) ** 2) + ud)
        df = f * (-lambda1 * np.real(1j * ud * np.conj(uz)) - lambda2 * (np.exp((f - f0) / f0) - 1))
        d, fd, z, f = d + h * dd, fd + h * dfd, z + h * dz, f + h * df
        out[k + 1] = d, fd, z, f
    return t, out


def simulate_ref(f0, period, duration, solver=None, **kw):
    sig = nrt.metronome(1 / period, duration, FS)
    return nrt.simulate(nrt.ASHLE(f0=f0, **kw), sig, dt=1 / FS,
                        solver=diffrax.Euler() if solver is None else solver)


@pytest.mark.parametrize("f0,ratio,kw", [(2.5, 1.0, {}), (2.0, 0.7, {}),
                                         (1.6, 1.3, {"lambda1": 1.0, "lambda2": 0.5, "gamma": 0.1})])
def test_matches_numpy_forward_euler(f0, ratio, kw):
    period = ratio / f0
    t, ref = numpy_euler(f0, period, 3.0, **kw)
    traj = simulate_ref(f0, period, 3.0, **kw)
    np.testing.assert_allclose(np.asarray(traj.ts), t, rtol=0, atol=1e-12)
    for i, leaf in enumerate(traj.ys):
        got = np.asarray(leaf)
        want = ref[:, i] if np.iscomplexobj(got) else ref[:, i].real
        rel = np.max(np.abs(got - want)) / np.max(np.abs(want))
        assert rel < 1e-9, (i, rel)


def _second_half_plv(traj, period):
    half = traj.ts.shape[0] // 2
    return float(nrt.plv(jnp.angle(traj.ys.z[half:]), 2 * jnp.pi * traj.ts[half:] / period))


def test_plv_one_at_spontaneous_rate():
    f0 = 2.5
    traj = simulate_ref(f0, 1 / f0, 20.0)
    assert _second_half_plv(traj, 1 / f0) > 0.9999


def test_frequency_learning_pulls_f_to_stimulus():
    f0, f_s = 2.5, 2.5 / 0.85
    free = simulate_ref(f0, 1 / f_s, 30.0, lambda2=0.0)       # no elasticity: f -> f_s
    assert abs(float(free.ys.f[-1]) - f_s) / f_s < 1e-3
    elastic = simulate_ref(f0, 1 / f_s, 30.0)                  # reference: most of the way
    f_end = float(elastic.ys.f[-1])
    assert abs(f_end - f_s) < 0.25 * abs(f0 - f_s)
    assert _second_half_plv(elastic, 1 / f_s) > 0.999         # and locked to the metronome


def test_elasticity_returns_f_to_f0_without_forcing():
    # lambda1 = 0 decouples f: f' = -lambda2 f (exp((f - f0)/f0) - 1), solved by SciPy.
    f0, lambda2 = 2.0, 2.0
    model = nrt.ASHLE(f0=f0, lambda1=0.0, lambda2=lambda2, forcing=0.0)
    c = jnp.asarray(0.01 + 0j)
    y0 = nrt.ASHLEState(c, jnp.asarray(f0), c, jnp.asarray(1.3 * f0))
    traj = nrt.simulate(model, nrt.silence(4.0, FS), dt=1 / FS, y0=y0)   # RK4
    sol = scipy.integrate.solve_ivp(lambda t, f: -lambda2 * f * (np.exp((f - f0) / f0) - 1),
                                    (0, 4.0), [1.3 * f0], t_eval=np.asarray(traj.ts),
                                    rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(np.asarray(traj.ys.f), sol.y[0], rtol=1e-8)
    # With learning on as well, f still returns to f0 when there is no stimulus.
    full = nrt.simulate(nrt.ASHLE(f0=f0, forcing=0.0), nrt.silence(20.0, FS), dt=1 / FS, y0=y0,
                        solver=diffrax.Euler())
    assert abs(float(full.ys.f[-1]) - f0) / f0 < 1e-3


def test_asynchrony_sign_flips_between_fast_and_slow_metronomes():
    f0 = 2.5
    out = {}
    for ratio in (1.0, 0.7, 1.3):
        period = ratio / f0
        traj = simulate_ref(f0, period, 20.0)
        taps = tap_times(np.asarray(traj.ts), np.asarray(traj.ys.z))
        out[ratio] = mean_asynchrony(taps, metronome_onsets(period, 21.0), t_min=10.0)
    assert out[0.7] - out[1.0] > 0.003     # faster metronome: later taps (+ms)
    assert out[1.3] - out[1.0] < -0.003    # slower metronome: earlier taps


def test_solvers_agree():
    f0, period = 2.0, 0.45
    sig = nrt.metronome(1 / period, 2.0, FS)
    model = nrt.ASHLE(f0=f0)
    rk4 = nrt.simulate(model, sig, dt=1 / FS)
    ts = np.asarray(rk4.ts)[::50]
    adapt = nrt.simulate(model, sig, dt=1 / FS, solver=diffrax.Tsit5(), saveat=ts,
                         stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-10))
    euler = nrt.simulate(model, sig, dt=1 / FS, solver=diffrax.Euler())
    # RK4 at 2 ms carries a global error of order 1e-6 here; the adaptive solve is tighter.
    np.testing.assert_allclose(np.asarray(adapt.ys.z), np.asarray(rk4.ys.z)[::50], atol=2e-5)
    # Euler is first order: close, but far less accurate than RK4.
    err = np.max(np.abs(np.asarray(euler.ys.z)[::50] - np.asarray(adapt.ys.z)))
    assert 1e-3 < err < 0.2


def test_guarded_at_zero_state_and_differentiable():
    model = nrt.ASHLE(f0=2.0)
    zero = jnp.asarray(0j)
    y = nrt.ASHLEState(zero, jnp.asarray(2.0), zero, jnp.asarray(2.0))
    sig = nrt.metronome(2.0, 1.0, FS)
    dy = model(jnp.asarray(0.1), y, sig)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in dy)

    def loss(lambda1):
        traj = nrt.simulate(nrt.ASHLE(f0=2.0, lambda1=lambda1), nrt.metronome(2.3, 1.0, FS),
                            dt=1 / FS, solver=diffrax.Euler())
        return traj.ys.f[-1]

    g = jax.grad(loss)(jnp.asarray(4.0))
    eps = 1e-5
    fd = (loss(jnp.asarray(4.0 + eps)) - loss(jnp.asarray(4.0 - eps))) / (2 * eps)
    assert np.isfinite(float(g))
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-5)


def test_vmap_over_parameters():
    f0s = jnp.asarray([1.8, 2.0, 2.5])

    def final_f(f0):
        traj = nrt.simulate(nrt.ASHLE(f0=f0), nrt.metronome(2.2, 2.0, FS), dt=1 / FS,
                            solver=diffrax.Euler(), throw=False)
        return traj.ys.f[-1], traj.ok

    f, ok = jax.vmap(final_f)(f0s)
    assert bool(jnp.all(ok))
    for i in range(3):
        single = simulate_ref(float(f0s[i]), 1 / 2.2, 2.0).ys.f[-1]
        np.testing.assert_allclose(float(f[i]), float(single), rtol=1e-12)
