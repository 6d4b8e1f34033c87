"""The Lorenz system against SciPy, its fixed points, and its chaotic time average."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import nrtjax as nrt


def lorenz_rhs(t, y, sigma, rho, beta):
    x, v, z = y
    return [sigma * (v - x), x * (rho - z) - v, x * v - beta * z]


def test_matches_solve_ivp_short_horizon():
    dt, T = 1e-3, 2.0
    traj = nrt.simulate(nrt.Lorenz(), nrt.silence(T, 1 / dt), dt=dt)
    sol = scipy.integrate.solve_ivp(lorenz_rhs, (0, T), [1.0, 1.0, 1.0], args=(10.0, 28.0, 8 / 3),
                                    t_eval=np.asarray(traj.ts), rtol=1e-12, atol=1e-12,
                                    method="DOP853")
    assert traj.ys.shape == (traj.ts.shape[0], 3)
    np.testing.assert_allclose(np.asarray(traj.ys), sol.y.T, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rho", [10.0, 20.0])
def test_settles_on_c_plus_minus_below_24_74(rho):
    beta = 8 / 3
    traj = nrt.simulate(nrt.Lorenz(rho=rho), nrt.silence(200.0, 100.0), dt=0.01)
    end = np.asarray(traj.ys[-1])
    c = np.sqrt(beta * (rho - 1))
    targets = np.array([[c, c, rho - 1], [-c, -c, rho - 1]])
    assert np.min(np.linalg.norm(targets - end, axis=1)) < 1e-3


def test_time_average_of_z_is_about_23_5_at_rho_28():
    traj = nrt.simulate(nrt.Lorenz(rho=28.0), nrt.silence(520.0, 200.0), dt=0.005)
    z = np.asarray(traj.ys[:, 2])
    mean_z = z[traj.ts.shape[0] * 20 // 520:].mean()     # drop the first 20 s
    assert abs(mean_z - 23.5) < 0.5


def test_ignores_input_and_is_vmappable():
    model = nrt.Lorenz()
    y = jnp.asarray([1.0, 2.0, 3.0])
    np.testing.assert_allclose(np.asarray(model(jnp.asarray(0.0), y, nrt.metronome(2.0, 1.0, 10.0))),
                               lorenz_rhs(0, [1.0, 2.0, 3.0], 10.0, 28.0, 8 / 3))
    rhos = jnp.asarray([10.0, 28.0])
    final = jax.vmap(lambda r: nrt.simulate(nrt.Lorenz(rho=r), nrt.silence(1.0, 100.0),
                                            dt=0.01, throw=False).ys[-1])(rhos)
    single = nrt.simulate(nrt.Lorenz(rho=28.0), nrt.silence(1.0, 100.0), dt=0.01).ys[-1]
    np.testing.assert_allclose(np.asarray(final[1]), np.asarray(single), rtol=1e-12)
