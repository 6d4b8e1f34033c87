"""nrt.fit: reparameterisation, Laplace errors vs OLS, gradients vs finite differences,
parameter recovery from taps simulated by an independent NumPy reference, and the
identifiability of lambda1/lambda2 from summary asynchronies."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from jaxtyping import Array

import nrtjax as nrt
from nrtjax import make_optimizer
from nrtjax.fitting import ParamSpace, identifiability, losses, profile, synthetic
from nrtjax.fitting._fit import _pick, design

from ._ashle_numpy import peak_taps, phase_taps, simulate_ashle


class Line(eqx.Module):
    a: Array
    b: Array


class XY(eqx.Module):
    x: Array
    y: Array


def line_residuals(model, d):
    r = d.y - (model.a * d.x + model.b)
    return r, jnp.ones_like(r)


def test_param_space_roundtrip_and_bounds():
    model = nrt.ASHLE(lambda1=3.0, lambda2=0.5, gamma=0.1)
    space = ParamSpace(("lambda1", "lambda2", "gamma"), {"lambda2": (0.1, 10.0),
                                                         "gamma": (None, None)}, model=model)
    theta = space.get(model)
    np.testing.assert_allclose(space.constrain(space.unconstrain(theta)), theta, rtol=1e-12)
    extreme = space.constrain(jnp.asarray([-50.0, 50.0, -3.0]))
    assert 0 < float(extreme[0]) < 1e-20 and float(extreme[1]) <= 10.0
    assert float(extreme[2]) == -3.0
    moved = space.set(model, jnp.asarray([5.0, 2.0, 0.3]))
    assert float(moved.lambda1) == 5.0 and float(moved.gamma) == 0.3 and float(moved.f0) == 2.0
    assert space.log_scaled() == (True, False, False)


@pytest.mark.parametrize("names, bounds, match", [
    (("lambda3",), None, "no scalar parameter 'lambda3'"),
    (("lambda1",), {"lambda1": (2.0, 1.0)}, "empty"),
    (("lambda1",), {"gamma": (0.0, 1.0)}, "not fitted"),
    (("lambda1", "lambda1"), None, "distinct"),
])
def test_param_space_errors(names, bounds, match):
    with pytest.raises(ValueError, match=match):
        ParamSpace(names, bounds, model=nrt.ASHLE())


def test_fit_matches_ols_with_laplace_errors_and_one_compile():
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 2, 30)
    ys = np.stack([1.5 * x - 0.7, -0.4 * x + 2.0]) + rng.normal(0, 0.3, (2, 30))
    data = XY(jnp.asarray(np.stack([x, x])), jnp.asarray(ys))
    free = {"a": (None, None), "b": (None, None)}
    traces = []

    def residuals(model, d):
        traces.append(1)
        return line_residuals(model, d)

    template = Line(jnp.asarray(0.1), jnp.asarray(0.1))
    opt = make_optimizer(0.1, total_steps=600, final_fraction=0.1, clip_norm=10.0)
    out = nrt.fit(template, residuals, data, params=("a", "b"), bounds=free, key=jr.key(1),
                  restarts=2, steps=600, patience=100, rtol=0.0, optimizer=opt)
    design = np.stack([x, np.ones_like(x)], 1)
    for s in range(2):
        coef, sse = np.linalg.lstsq(design, ys[s], rcond=None)[:2]
        cov = sse[0] / (30 - 2) * np.linalg.inv(design.T @ design)
        np.testing.assert_allclose(out.params[s], coef, atol=1e-5)
        np.testing.assert_allclose(out.se[s], np.sqrt(np.diag(cov)), rtol=1e-4)
        np.testing.assert_allclose(out.cov[s], cov, rtol=1e-4, atol=1e-10)
    assert out.history.shape == (2, 600) and np.all(np.isfinite(out.history[:, 0]))
    n_traces = len(traces)
    again = nrt.fit(template, residuals, XY(data.x, data.y + 1.0), params=("a", "b"),
                    bounds=free, key=jr.key(2), restarts=2, steps=600, patience=100, rtol=0.0,
                    optimizer=opt)
    assert len(traces) == n_traces  # same shapes: the compiled cohort program is reused
    np.testing.assert_allclose(again.params[:, 1], out.params[:, 1] + 1.0, atol=1e-5)


def test_early_stopping_and_identifiability_of_a_degenerate_pair():
    # y depends on a + b only: one constrained direction, one free.
    x = jnp.linspace(0, 1, 20)[None]
    data = XY(x, 3.0 + 0.01 * jnp.sin(40 * x))

    def residuals(model, d):
        r = d.y - (model.a + model.b)
        return r[0], jnp.ones_like(r[0])

    out = nrt.fit(Line(jnp.asarray(1.0), jnp.asarray(1.0)), residuals, data, params=("a", "b"),
                  key=jr.key(0), restarts=1, steps=2000, patience=20)
    assert int(out.steps_run[0]) < 2000 and np.isnan(out.history[0, -1])
    np.testing.assert_allclose(float(out.params[0].sum()), 3.0, atol=1e-2)
    rep = identifiability(out)[0]
    assert rep["n_constrained"] == 1 and np.isinf(out.se[0]).all()
    strong = rep["directions"][-1]["combination"]
    assert "log a" in strong and "log b" in strong and "-" not in strong.replace("+", "")


def test_tap_loss_gradient_matches_finite_differences():
    ts, z = simulate_ashle(3.0, 2.5, 2.0, np.array([0.4, 0.6]), duration=8.0)
    taps = [peak_taps(ts, np.real(z[:, j])) for j in range(2)]
    taps = [t[t > 2.0] for t in taps]
    n = min(len(t) for t in taps)
    data = losses.TapData(jnp.asarray(0.5), jnp.asarray([0.4, 0.6]),
                          jnp.asarray(np.stack([t[:n] for t in taps]) + 0.003),
                          jnp.ones((2, n), bool))
    res = losses.TapResiduals(duration=8.0, fs=500.0)

    @jax.jit
    def loss(theta):
        r, w = res(nrt.ASHLE(lambda1=theta[0], lambda2=theta[1]), data)
        return jnp.sum(w * r**2) / jnp.sum(w)

    theta = jnp.asarray([4.0, 2.0])
    g = jax.grad(loss)(theta)
    for j in range(2):
        e = jnp.zeros(2).at[j].set(1e-4)
        fd = (loss(theta + e) - loss(theta - e)) / 2e-4
        assert abs(float(g[j] - fd)) < 1e-3 * abs(float(fd)) + 1e-6


def test_lm_matches_ols_with_gauss_newton_errors():
    rng = np.random.default_rng(4)
    x = np.linspace(-1, 2, 25)
    ys = np.stack([0.8 * x + 0.3, -1.2 * x + 1.0]) + rng.normal(0, 0.2, (2, 25))
    data = XY(jnp.asarray(np.stack([x, x])), jnp.asarray(ys))
    free = {"a": (None, None), "b": (None, None)}
    out = nrt.fit(Line(jnp.asarray(0.0), jnp.asarray(0.0)), line_residuals, data,
                  params=("a", "b"), bounds=free, key=jr.key(0), restarts=1, steps=20,
                  patience=3, method="lm")
    design_m = np.stack([x, np.ones_like(x)], 1)
    for s in range(2):
        coef, sse = np.linalg.lstsq(design_m, ys[s], rcond=None)[:2]
        cov = sse[0] / (25 - 2) * np.linalg.inv(design_m.T @ design_m)
        np.testing.assert_allclose(out.params[s], coef, atol=1e-8)
        np.testing.assert_allclose(out.se[s], np.sqrt(np.diag(cov)), rtol=1e-5)
    # A linear problem: one Gauss-Newton step lands on the optimum, then the plateau.
    assert np.all(out.steps_run < 20) and np.all(out.plateau) and np.all(out.converged())
    assert np.all(out.newton_step < 1e-6)


def _exp_residuals(model, d):
    r = d.y - (jnp.exp(model.a * d.x) + model.b)
    return r, jnp.ones_like(r)


@pytest.mark.parametrize("method, kw", [("lm", dict(steps=40, patience=3, rtol=1e-4)),
                                        ("adam", dict(steps=400, patience=20,
                                                      learning_rate=0.2))])
def test_cohort_refinement_gives_each_subject_its_own_fit(method, kw):
    """Subjects of a cohort that stop after different numbers of iterations get what a
    fit of them alone gives (the refinement runs subject by subject: a vmapped loop
    would run every subject until the slowest stops)."""
    x = np.linspace(0, 1, 40)
    truth = [(4.0, 0.0), (0.3, 1.0), (1.0, -0.5), (2.0, 0.2), (3.5, 3.0)]
    ys = (np.stack([np.exp(a * x) + b for a, b in truth])
          + np.random.default_rng(0).normal(0, 0.05, (len(truth), 40)))
    data = XY(jnp.asarray(np.broadcast_to(x, ys.shape).copy()), jnp.asarray(ys))

    def fit(d):
        return nrt.fit(Line(jnp.asarray(4.0), jnp.asarray(0.0)), _exp_residuals, d,
                       params=("a", "b"), bounds={"a": (None, None), "b": (None, None)},
                       key=jr.key(0), restarts=1, method=method, **kw)

    cohort = fit(data)
    steps = np.asarray(cohort.steps_run)
    assert len(set(steps.tolist())) >= 4 and steps.max() < kw["steps"]
    if method == "lm":
        np.testing.assert_allclose(cohort.params, np.asarray(truth), atol=0.05)
    for i in range(len(truth)):
        alone = fit(jax.tree.map(lambda v: v[i:i + 1], data))
        # The same iterations; LM's central-difference Jacobian (h = 1e-5) turns the
        # round-off of a different batch shape into up to ~1e-9 in the optimum.
        assert int(alone.steps_run[0]) == steps[i]
        np.testing.assert_allclose(alone.params[0], cohort.params[i], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(alone.history[0], cohort.history[i], rtol=1e-6)


def test_profile_likelihood_matches_the_linear_model():
    """For y = a x + b the profile over b at fixed a is a least-squares mean: the
    likelihood ratio n log(L(a)/L_hat) in closed form."""
    rng = np.random.default_rng(5)
    x = np.linspace(0.5, 2, 30)
    ys = np.stack([2.0 * x + 1.0, 2.0 * x + 1.0]) + np.stack([rng.normal(0, 0.02, 30),
                                                               rng.normal(0, 2.0, 30)])
    data = XY(jnp.asarray(np.stack([x, x])), jnp.asarray(ys))
    template = Line(jnp.asarray(1.0), jnp.asarray(1.0))
    out = nrt.fit(template, line_residuals, data, params=("a", "b"), key=jr.key(0),
                  restarts=1, steps=30, patience=3, method="lm")
    prof = profile(template, line_residuals, data, out, factor=1.2)
    for s in range(2):
        a_hat, b_hat = np.asarray(out.params[s])
        l_hat = np.mean((ys[s] - a_hat * x - b_hat) ** 2)
        for a, lr in ((a_hat / 1.2, prof["lr_low"][s, 0]), (a_hat * 1.2, prof["lr_high"][s, 0])):
            b = np.mean(ys[s] - a * x)
            expected = 30 * np.log(np.mean((ys[s] - a * x - b) ** 2) / l_hat)
            np.testing.assert_allclose(lr, expected, rtol=1e-5)
    # Quiet subject: both parameters pinned; noisy subject (sd 2): neither within 20%.
    assert prof["identified"][0].all() and not prof["identified"][1].any()
    # The level is a probability; the threshold is the chi-squared_1 quantile of it.
    np.testing.assert_allclose(prof["threshold"], 10.828, atol=1e-3)  # default 0.999
    loose = profile(template, line_residuals, data, out, factor=1.2, level=0.95)
    np.testing.assert_allclose(loose["threshold"], 3.841, atol=1e-3)
    np.testing.assert_allclose(loose["lr_low"], prof["lr_low"])
    assert np.all(loose["identified"] >= prof["identified"])
    with pytest.raises(ValueError, match="probability"):
        profile(template, line_residuals, data, out, level=3.841)


def _log_sq_residuals(model, d):
    r = d.y - (jnp.log(model.a) ** 2 * d.x + model.b)
    return r, jnp.ones_like(r)


def test_profile_scan_flags_a_second_basin():
    """y = (log a)^2 x + b: a and 1/a fit the data equally well. The profile at the band's
    edges (closed form: b is a least-squares mean) says a is pinned to 20 %; the scan
    finds the mirror basin near 1/a_hat, so a is not identified, and b (the same in both
    basins) is."""
    rng = np.random.default_rng(7)
    x = np.linspace(0.5, 2, 30)
    y = np.log(2.0) ** 2 * x + 3.0 + rng.normal(0, 0.2, 30)
    data = XY(jnp.asarray(x[None]), jnp.asarray(y[None]))
    template = Line(jnp.asarray(1.5), jnp.asarray(1.0))
    out = nrt.fit(template, _log_sq_residuals, data, params=("a", "b"), key=jr.key(0),
                  restarts=1, steps=30, patience=3, method="lm", starts=16,
                  start_ranges={"a": (0.2, 5.0), "b": (0.5, 10.0)})
    a_hat, b_hat = np.asarray(out.params[0])
    l_hat = float(out.loss[0])
    for a, lr in ((a_hat / 1.2, "lr_low"), (a_hat * 1.2, "lr_high")):
        b = np.mean(y - np.log(a) ** 2 * x)
        expected = 30 * np.log(np.mean((y - np.log(a) ** 2 * x - b) ** 2) / l_hat)
        assert expected > 3.841
        prof = profile(template, _log_sq_residuals, data, out, scan=False, level=0.95)
        np.testing.assert_allclose(prof[lr][0, 0], expected, rtol=1e-5)
    assert prof["identified"][0, 0] or prof["design_lr"][0, 0] < 3.841
    prof = profile(template, _log_sq_residuals, data, out, level=0.95)
    assert prof["scan_lr"][0, 0] < 3.841 and not prof["identified"][0, 0]
    low, high = prof["interval"][0, 0]
    assert low <= min(a_hat, 1 / a_hat) * 1.1 and high >= max(a_hat, 1 / a_hat) / 1.1
    assert prof["identified"][0, 1]


def test_design_is_log_uniform_in_the_box_and_picks_spread():
    space = ParamSpace(("lambda1", "lambda2"), None)
    u = design(space, [(0.5, 20.0), (0.25, 8.0)], 256, seed=3)
    theta = np.exp(u)
    assert theta.shape == (256, 2)
    assert np.all((theta[:, 0] > 0.5) & (theta[:, 0] < 20)) and np.all(theta[:, 1] < 8)
    # Sobol: every one of 16 log-spaced strips of each axis holds exactly 16 points.
    for j, (lo, hi) in enumerate([(0.5, 20.0), (0.25, 8.0)]):
        strip = np.floor(16 * np.log(theta[:, j] / lo) / np.log(hi / lo))
        np.testing.assert_array_equal(np.bincount(strip.astype(int), minlength=16), 16)
    loss = np.array([0.0, 0.1, 5.0, 0.2])
    pts = np.array([[0.0, 0.0], [0.05, 0.0], [3.0, 3.0], [1.0, 0.0]])
    np.testing.assert_array_equal(_pick(pts, loss, 2, sep=0.5), [0, 3])
    np.testing.assert_array_equal(_pick(pts, loss, 4, sep=0.5), [0, 3, 2, 1])


def test_reference_integration_agrees_with_the_test_reference():
    """nrtjax.fitting.synthetic (RK4 at 2 kHz) against tests/_ashle_numpy (Euler, written
    separately) at 20 kHz: the same ODE, two codes, two methods."""
    ts, z = synthetic.reference_ashle(5.0, 1.5, 0.45, np.array([0.36, 0.55]), duration=4.0)
    ts_e, z_e = simulate_ashle(5.0, 1.5, 1 / 0.45, np.array([0.36, 0.55]), duration=4.0,
                               fs=20000.0)
    np.testing.assert_allclose(z, z_e[::10], atol=5e-3)  # Euler: first order
    for j in range(2):
        a = synthetic.peaks(ts, np.real(z[:, j]))
        b = peak_taps(ts_e, np.real(z_e[:, j]))
        assert a.size == b.size > 6
        np.testing.assert_allclose(a, b, atol=2e-4)


def test_model_taps_match_reference_peaks_from_trial_start():
    """The cause of the low-lambda1 basin: taps from trial start. The model's taps (RK4 at
    125 Hz, peak read-out, first cycle included) must sit on the peaks of Re z of a fine
    reference integration from the very first tap. The angle of z (Euler at 500 Hz) puts
    tap 0 at t = 0 (where z starts on the real axis), some 50 ms before the first peak."""
    smt, periods = 0.4, np.array([0.28, 0.52])
    cohort = synthetic.simulate_cohort(
        [{"subject": "s", "lambda1": 6.0, "lambda2": 1.5, "smt_ms": 400.0,
          "periods_ms": list(1e3 * periods), "jitter_ms": 0.0, "start_s": 0.0}],
        duration=8.0)[0]
    n = max(len(t) for t in cohort["taps"])
    taps, mask = np.zeros((2, n)), np.zeros((2, n), bool)
    for j, t in enumerate(cohort["taps"]):
        taps[j, :len(t)], mask[j, :len(t)] = t, True
    assert taps[0, 0] < 0.1  # a tap in the first cycle
    data = losses.TapData(jnp.asarray(smt), jnp.asarray(periods), jnp.asarray(taps),
                          jnp.asarray(mask))
    model = nrt.ASHLE(lambda1=6.0, lambda2=1.5)
    r, w = losses.TapResiduals(duration=8.0)(model, data)
    assert float(jnp.max(jnp.abs(jnp.where(w > 0, r, 0)))) < 0.2  # ms
    old = losses.TapResiduals(duration=8.0, fs=500.0, solver=diffrax.Euler(), readout="phase")
    r_old, _ = old(model, data)
    assert abs(float(r_old[0])) > 20.0


def _synthetic_taps(lams, smt, periods, *, duration, seed):
    """Subjects' taps from the NumPy reference (the motor phase passing 2 pi k, as in the
    readout, computed independently), from 0.8 s on, with 3-5 ms Gaussian jitter."""
    rng = np.random.default_rng(seed)
    l1, l2 = np.asarray(lams, float).T
    ts, z = simulate_ashle(l1[:, None], l2[:, None], 1 / smt[:, None], periods[None, :],
                           duration=duration)
    s, r = len(l1), len(periods)
    rows = [[phase_taps(ts, z[:, i, j]) for j in range(r)] for i in range(s)]
    rows = [[t[(t > 0.8) & (t < duration - 0.2)] for t in row] for row in rows]
    n = max(len(t) for row in rows for t in row)
    taps, mask = np.zeros((s, r, n)), np.zeros((s, r, n), bool)
    for i in range(s):
        jitter = rng.uniform(0.003, 0.005)
        for j in range(r):
            k = len(rows[i][j])
            taps[i, j, :k] = rows[i][j] + rng.normal(0, jitter, k)
            mask[i, j, :k] = True
    return losses.TapData(jnp.asarray(smt), jnp.asarray(np.broadcast_to(periods, (s, r)).copy()),
                          jnp.asarray(taps), jnp.asarray(mask))


def _recover(lams, smt, seed, restarts, steps):
    periods = np.array([0.7, 0.85, 1.15, 1.3]) * 0.5  # four rates around a 500 ms SMT
    data = _synthetic_taps(lams, smt, periods, duration=20.0, seed=seed)
    res = losses.TapResiduals(duration=20.0, fs=500.0, solver=diffrax.Euler(), readout="phase")
    out = nrt.fit(nrt.ASHLE(), res, data, params=("lambda1", "lambda2"), key=jr.key(seed),
                  restarts=restarts, steps=steps, patience=25, learning_rate=0.08)
    rel = np.abs(np.asarray(out.params) / np.asarray(lams) - 1)
    return out, rel


def test_parameter_recovery_from_taps():
    lams = [(2.0, 6.0), (7.0, 1.5)]
    out, rel = _recover(lams, np.array([0.5, 0.5]), seed=0, restarts=2, steps=90)
    assert np.all(rel < 0.2), (np.asarray(out.params), rel)
    assert np.all(np.isfinite(out.se)) and np.all(out.se < 0.2 * out.params)


@pytest.mark.slow
def test_parameter_recovery_cohort():
    rng = np.random.default_rng(3)
    lams = rng.uniform(1.0, 8.0, (12, 2))
    out, rel = _recover(lams, rng.uniform(0.4, 0.6, 12), seed=3, restarts=4, steps=250)
    assert np.all(rel < 0.2), (np.asarray(out.params), rel)


def test_summary_asynchronies_identify_only_the_ratio():
    ratios = np.array([0.7, 0.85, 1.15, 1.3])
    ts, z = simulate_ashle(4.0, 2.0, 2.0, np.append(1.0, ratios) * 0.5, duration=20.0)
    lag = []
    for j, p in enumerate(np.append(1.0, ratios) * 0.5):
        taps = peak_taps(ts, np.real(z[:, j]))
        taps = taps[taps > 12.0]
        lag.append(1e3 * np.mean(taps - p * np.round(taps / p)))
    rng = np.random.default_rng(0)
    obs = np.array(lag[1:]) - lag[0] + rng.normal(0, 0.5, 4)
    data = losses.SummaryData(jnp.asarray([0.5]), jnp.asarray(ratios[None]),
                              jnp.asarray(obs[None]), jnp.ones((1, 4), bool))
    res = losses.SummaryResiduals(duration=20.0, window=8.0, fs=500.0)
    out = nrt.fit(nrt.ASHLE(), res, data, params=("lambda1", "lambda2"), key=jr.key(0),
                  restarts=1, steps=1)
    rep = identifiability(out)[0]
    weak, strong = rep["directions"]
    assert strong["combination"].startswith("+0.7") and "-0.7" in strong["combination"]
    assert strong["constrained"] and not weak["constrained"]
    assert weak["eigenvalue"] < 1e-2 * strong["eigenvalue"]


@pytest.mark.slow
def test_global_fit_finds_the_global_optimum_or_flags():
    """A subject of the failing held-out kind, (8, 2.5), taps from trial start, simulated
    by the test's own reference (Euler at 4 kHz, peaks of Re z), short (8 s, 3 rates): the
    global design and LM refinement reach a loss no worse than the truth's (the global
    optimum), and any parameter more than 20% off is flagged as not identified."""
    periods = np.array([0.7, 1.0, 1.3]) * 0.45
    ts, z = simulate_ashle(8.0, 2.5, 1 / 0.45, periods, duration=8.0, fs=4000.0)
    rng = np.random.default_rng(11)
    taps = [peak_taps(ts, np.real(z[:, j])) for j in range(3)]
    taps = [t[t < 7.9] + rng.normal(0, 0.003, t[t < 7.9].shape) for t in taps]
    n = max(len(t) for t in taps)
    arr, mask = np.zeros((1, 3, n)), np.zeros((1, 3, n), bool)
    for j, t in enumerate(taps):
        arr[0, j, :len(t)], mask[0, j, :len(t)] = t, True
    data = losses.TapData(jnp.asarray([0.45]), jnp.asarray(periods[None]), jnp.asarray(arr),
                          jnp.asarray(mask))
    res = losses.TapResiduals(duration=8.0)
    out = nrt.fit(nrt.ASHLE(), res, data, params=("lambda1", "lambda2"), key=jr.key(0),
                  restarts=3, steps=20, patience=3, method="lm", starts=256,
                  start_ranges={"lambda1": (0.5, 20.0), "lambda2": (0.25, 8.0)})
    datum = jax.tree.map(lambda x: x[0], data)
    r, w = res(nrt.ASHLE(lambda1=8.0, lambda2=2.5), datum)
    at_truth = float(jnp.sum(w * r**2) / jnp.sum(w))
    assert float(out.loss[0]) <= 1.001 * at_truth, (np.asarray(out.params), at_truth)
    assert out.converged()[0] and out.design_loss.shape == (1, 256)
    rel = np.abs(np.asarray(out.params[0]) / np.array([8.0, 2.5]) - 1)
    prof = profile(nrt.ASHLE(), res, data, out)
    assert not np.any((rel > 0.2) & prof["identified"][0]), (np.asarray(out.params), prof)
