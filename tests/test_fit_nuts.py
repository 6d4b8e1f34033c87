"""`nrtjax fit method=nuts`: the sampler wrapper against an analytic target, the prior's
map, config checks, and one small job end to end."""

import csv
import json

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from nrtjax.fitting import posterior

from ._ashle_numpy import peak_taps, simulate_ashle
from .test_fit_job import _run


@pytest.fixture(autouse=True)
def _x64():
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", prev)


def test_nuts_recovers_correlated_gaussian_moments():
    # A known 2-D Gaussian (sd 1 and 0.5, correlation 0.8) through the same wrapper the
    # job uses, started 3 sd away: sample mean and covariance match to Monte Carlo error.
    mu = jnp.array([1.0, -2.0])
    cov = jnp.array([[1.0, 0.4], [0.4, 0.25]])
    prec = jnp.linalg.inv(cov)

    def logdensity(u):
        return -0.5 * (u - mu) @ prec @ (u - mu)

    start = mu + jnp.array([3.0, 1.5])
    out = jax.jit(lambda k: posterior.nuts(logdensity, start, k, warmup=200, samples=1000,
                                           chains=4))(jr.key(0))
    u = np.asarray(out["u"])
    assert u.shape == (4, 1000, 2) and not np.asarray(out["divergent"]).any()
    flat = u.reshape(-1, 2)
    summ = posterior.summarise(u, ["a", "b"])
    for j, r in enumerate(summ):
        se = np.sqrt(cov[j, j] / r["ess"])
        assert abs(r["mean"] - mu[j]) < 4 * se
        assert r["rhat"] < 1.01 and r["ess"] > 1000
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.08)
    # Central 95 % interval of N(1, 1): 1 -+ 1.96.
    assert abs(summ[0]["ci_low"] - (1 - 1.96)) < 0.15 and abs(summ[0]["ci_high"] - 2.96) < 0.15
    # The Laplace start of the mass matrix is the covariance for a Gaussian.
    np.testing.assert_allclose(posterior.laplace_u(logdensity, mu), cov, rtol=1e-6)


def test_split_rhat_flags_chains_that_disagree():
    rng = np.random.default_rng(0)
    same = rng.normal(size=(4, 500, 1))
    apart = same + np.array([0.0, 0.0, 0.0, 3.0])[:, None, None]
    assert posterior.split_rhat(same)[0] < 1.01
    assert posterior.split_rhat(apart)[0] > 1.3


def test_log_uniform_box_maps_and_prior():
    box = posterior.LogUniformBox({"lambda1": (0.5, 20.0), "lambda2": (0.25, 8.0)})
    theta = jnp.array([4.0, 2.0])
    np.testing.assert_allclose(box.to_theta(box.to_u(theta)), theta, rtol=1e-9)
    # Uniform u in the prior's own measure: draws of u from the logistic distribution
    # (the prior in u, exp(log_jacobian)) map to log-uniform theta.
    u = jr.logistic(jr.key(1), (20000, 2), dtype=jnp.float64)
    x = (np.log(np.asarray(box.to_theta(u))) - np.log([0.5, 0.25])) / np.log([40.0, 32.0])
    assert np.all((x > 0) & (x < 1))
    np.testing.assert_allclose(np.histogram(x[:, 0], bins=5, range=(0, 1))[0] / 20000,
                               0.2, atol=0.015)
    np.testing.assert_allclose(jnp.exp(box.log_jacobian(jnp.zeros(2))), 1 / 16)
    for bad in ({"lambda1": (2.0, 1.0)}, {"lambda1": (0.0, 1.0)}, {"lambda1": (1.0,)}):
        with pytest.raises(ValueError, match="prior range"):
            posterior.LogUniformBox(bad)


@pytest.mark.parametrize("override, message", [
    ("nuts_chains=1", "nuts_chains"), ("nuts_samples=5", "nuts_samples"),
    ("nuts_warmup=0", "nuts_warmup"), ("credible=1.5", "credible"),
    ("nuts_max_depth=20", "nuts_max_depth"), ("method=hmc", "method")])
def test_fit_job_nuts_config_refused(tmp_path, override, message):
    proc = _run(tmp_path, "taps=tests/data/scheurich2018_musicians.csv", "method=nuts",
                override)
    assert proc.returncode == 2 and message in proc.stderr


def test_fit_job_nuts_needs_taps(tmp_path):
    proc = _run(tmp_path, "summary=tests/data/scheurich2018_musicians.csv", "method=nuts")
    assert proc.returncode == 2 and "method=nuts samples tap data" in proc.stderr


def test_fit_job_nuts_end_to_end(tmp_path):
    ts, z = simulate_ashle(5.0, 2.0, 2.0, np.array([0.4, 0.6]), duration=5.0)
    rng = np.random.default_rng(3)
    path = tmp_path / "taps.csv"
    with open(path, "w") as f:
        f.write("subject,trial,smt_ms,period_ms,tap_s\n")
        for j, period in enumerate(("400", "600")):
            for t in peak_taps(ts, np.real(z[:, j])):
                f.write(f"p1,t{j},500,{period},{t + rng.normal(0, 0.003):.5f}\n")
    out = tmp_path / "out"
    proc = _run(tmp_path, f"taps={path}", f"out={out}", "method=nuts", "starts=8",
                "restarts=1", "steps=10", "nuts_chains=2", "nuts_warmup=40",
                "nuts_samples=40", "nuts_max_depth=5")
    assert proc.returncode == 0, proc.stderr
    with open(out / "posterior.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["subject"], r["param"]) for r in rows] == [("p1", "lambda1"), ("p1", "lambda2")]
    for r in rows:
        lo, med, hi = float(r["ci_low"]), float(r["median"]), float(r["ci_high"])
        assert lo <= med <= hi and r["mixed"] in ("yes", "no")
        assert np.isfinite(float(r["rhat"])) and float(r["ess"]) > 0
    with np.load(out / "posterior.npz", allow_pickle=False) as z_:
        theta = z_["theta"]
        assert theta.shape == (1, 2, 40, 2) and list(z_["names"]) == ["lambda1", "lambda2"]
        assert np.all((theta[..., 0] > 0.5) & (theta[..., 0] < 20))  # inside the prior
    assert (out / "posterior_pairs.png").stat().st_size > 0
    fitted = list(csv.DictReader(open(out / "fitted_params.csv")))
    assert "lambda1_identified" not in fitted[0]  # no profile for method=nuts
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["posterior"]["subjects"]["p1"]) >= {"mixed", "divergences", "max_rhat"}


def test_fit_recovery_refuses_nuts():
    from experiments._job import ConfigError
    from experiments.fit_recovery import Config

    with pytest.raises(ConfigError, match="method=nuts"):
        Config(method="nuts")
