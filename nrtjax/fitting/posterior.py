"""Bayesian fits: posterior samples by NUTS (BlackJAX) through the differentiable simulator.

The likelihood is that of the least-squares fit: residuals independent Gaussian with one
unknown scale $\\sigma$. With the scale-invariant prior $p(\\sigma) \\propto 1/\\sigma$,
$\\sigma$ integrates out in closed form,

$$p(\\theta \\mid y) \\propto p(\\theta)\\, S(\\theta)^{-n/2},\\qquad S = \\sum_i w_i r_i^2,$$

with $n = \\sum_i w_i$ residuals: the same statistic as the profile likelihood of
[`nrtjax.fitting.profile`][]. Each parameter's prior is log-uniform on a range
(`LogUniformBox`); NUTS runs in unconstrained coordinates $u$ with
$\\log\\theta = a + (b - a)\\,\\sigma(u)$, the log-Jacobian added, so every draw lies
inside the prior's support.

BlackJAX is imported on first use, so `import nrtjax` does not load it.
"""

import warnings
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

LogDensity = Callable[[Float[Array, " p"]], Float[Array, ""]]


class LogUniformBox(eqx.Module):
    """Independent log-uniform priors on `(low, high)` per named parameter, and the map
    to the unconstrained coordinates NUTS moves in."""

    names: tuple[str, ...] = eqx.field(static=True)
    ranges: tuple[tuple[float, float], ...] = eqx.field(static=True)

    def __init__(self, ranges: Mapping[str, Sequence[float]], names: Sequence[str] | None = None):
        names = tuple(names if names is not None else ranges)
        spec = []
        for name in names:
            rng = ranges.get(name)
            if rng is None or len(rng) != 2 or not 0 < float(rng[0]) < float(rng[1]):
                raise ValueError(f"prior range for {name!r} must be (low, high) with "
                                 f"0 < low < high, got {rng!r}.")
            spec.append((float(rng[0]), float(rng[1])))
        if not names:
            raise ValueError("LogUniformBox needs at least one parameter.")
        self.names = names
        self.ranges = tuple(spec)

    def _ab(self, dtype, ndim: int = 1):
        shape = (1,) * (ndim - 1) + (-1,)  # explicit broadcast over leading axes
        a = jnp.asarray([np.log(lo) for lo, _ in self.ranges], dtype).reshape(shape)
        b = jnp.asarray([np.log(hi) for _, hi in self.ranges], dtype).reshape(shape)
        return a, b

    def to_theta(self, u: Float[Array, "... p"]) -> Float[Array, "... p"]:
        a, b = self._ab(u.dtype, u.ndim)
        return jnp.exp(a + (b - a) * jax.nn.sigmoid(u))

    def to_u(self, theta: Float[Array, "... p"], margin: float = 1e-6) -> Float[Array, "... p"]:
        """The unconstrained point of `theta`, clipped `margin` inside the box."""
        theta = jnp.asarray(theta)
        a, b = self._ab(theta.dtype, theta.ndim)
        s = jnp.clip((jnp.log(theta) - a) / (b - a), margin, 1 - margin)
        return jnp.log(s) - jnp.log1p(-s)

    def log_jacobian(self, u: Float[Array, " p"]) -> Float[Array, ""]:
        """log of the prior density in `u`, up to a constant: uniform in log theta."""
        return jnp.sum(jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u))

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Float[Array, "... p"]:
        """Draws from the prior (theta units)."""
        a, b = self._ab(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32,
                        len(shape) + 1)
        x = jr.uniform(key, (*shape, len(self.names)), dtype=a.dtype)
        return jnp.exp(a + (b - a) * x)


def least_squares_log_posterior(model: eqx.Module, residuals, datum: PyTree, space,
                                prior: LogUniformBox) -> LogDensity:
    """$\\log p(u \\mid y)$ up to a constant, for `residuals(model, datum) -> (r, w)`
    (one subject) and the fitted parameters `space` ([`nrtjax.fitting.ParamSpace`][],
    same names as `prior`): $-\\tfrac{n}{2}\\log S(\\theta(u))$ plus the prior in $u$."""
    if tuple(space.names) != tuple(prior.names):
        raise ValueError(f"prior names {prior.names} differ from fitted {space.names}.")

    def logdensity(u):
        r, w = residuals(space.set(model, prior.to_theta(u)), datum)
        n = jnp.sum(w)
        ssr = jnp.sum(w * r**2)
        lp = -0.5 * n * jnp.log(ssr) + prior.log_jacobian(u)
        return jnp.where(jnp.isfinite(lp), lp, -jnp.inf)

    return logdensity


def laplace_u(logdensity: LogDensity, u_hat: Float[Array, " p"], *, max_var: float = 3.3
              ) -> Float[Array, "p p"]:
    """Covariance of the Laplace approximation at `u_hat`, the inverse of the negative
    Hessian, its eigenvalues floored so that no direction is wider than `max_var`
    (about the variance of the prior in `u`, pi^2/3): a start for the mass matrix."""
    h = -jax.hessian(logdensity)(u_hat)
    h = 0.5 * (h + h.T)
    evals, evecs = jnp.linalg.eigh(jnp.where(jnp.isfinite(h), h, 0.0))
    evals = jnp.maximum(evals, 1.0 / max_var)
    return (evecs / evals[None, :]) @ evecs.T


def laplace_least_squares(prior: LogUniformBox, theta: Float[Array, " p"],
                          hessian: Float[Array, "p p"], loss: Float[Array, ""],
                          n_obs: Float[Array, ""], *, max_var: float = 3.3
                          ) -> Float[Array, "p p"]:
    """`laplace_u` from a least-squares fit's own numbers, without another derivative of
    the simulator: at the optimum of the mean squared residual $L$ (Hessian `hessian` in
    theta), $-\\log p = \\tfrac{n}{2}\\log(nL)$ has Hessian $\\tfrac{n}{2}H/L$ in theta;
    in $u$ it is $D\\,(\\tfrac{n}{2}H/L)\\,D$ with $D = \\mathrm{diag}(d\\theta/du)$, plus the
    prior's $2\\sigma(u)(1 - \\sigma(u))$ on the diagonal."""
    u = prior.to_u(theta)
    a, b = prior._ab(u.dtype)
    sig = jax.nn.sigmoid(u)
    d = theta * (b - a) * sig * (1 - sig)
    h = 0.5 * n_obs * hessian / loss
    h = jnp.where(jnp.isfinite(h), h, 0.0)
    h = d[:, None] * h * d[None, :] + jnp.diag(2 * sig * (1 - sig))
    evals, evecs = jnp.linalg.eigh(0.5 * (h + h.T))
    evals = jnp.maximum(evals, 1.0 / max_var)
    return (evecs / evals[None, :]) @ evecs.T


def nuts(logdensity: LogDensity, u_hat: Float[Array, " p"], key: PRNGKeyArray, *,
         warmup: int = 300, samples: int = 500, chains: int = 4,
         inverse_mass: Float[Array, "p p"] | None = None, init_scale: float = 1.0,
         target_accept: float = 0.8, max_depth: int = 8, shrinkage: float = 10.0
         ) -> dict[str, Array]:
    """NUTS (BlackJAX's kernel) after Stan's window adaptation of the step size and a
    dense mass matrix (BlackJAX's `window_adaptation.base` and `build_schedule`), one
    chain per `chains`, vmapped.

    Warm-up and sampling run in one `lax.scan` through one NUTS kernel whose step size
    and mass matrix are arguments (frozen at the adaptation's final values after
    `warmup` steps), so the log density's gradient is compiled once. The mass matrix
    starts at `inverse_mass` (identity if None) and each slow window's estimate is shrunk
    towards the previous one with weight `shrinkage` draws (BlackJAX's
    `imm_shrinkage_to_previous`), so that a short warm-up cannot leave a singular
    estimate.

    Chain 0 starts at `u_hat` (e.g. the least-squares optimum), the others at
    `u_hat + init_scale * L z`, $z \\sim N(0, I)$, $LL^T$ = `inverse_mass`, so that
    chains start apart and R-hat means something. `max_depth` caps the tree doublings
    (at most `2**max_depth - 1` leapfrog steps per draw): vmapped chains all wait for
    the deepest tree.

    **Returns:** `u` `(chains, samples, p)`, `divergent` and `accept` `(chains, samples)`,
    `n_steps` (leapfrog steps per draw), `step_size` `(chains,)`.
    """
    import blackjax
    from blackjax.adaptation.window_adaptation import base as window_base, build_schedule

    p = u_hat.shape[0]
    inv_mass = jnp.eye(p, dtype=u_hat.dtype) if inverse_mass is None else inverse_mass
    k_init, k_run = jr.split(key)
    chol = jnp.linalg.cholesky(inv_mass + 1e-12 * jnp.eye(p, dtype=u_hat.dtype))
    z = jr.normal(k_init, (chains, p), dtype=u_hat.dtype).at[0].set(0.0)
    starts = u_hat[None, :] + init_scale * z @ chol.T

    with jax.ensure_compile_time_eval():  # a constant, also under jit
        schedule = np.asarray(build_schedule(warmup), dtype=np.int32).reshape(warmup, 2)
    stage = np.concatenate([schedule[:, 0], np.zeros(samples, np.int32)])
    window_end = np.concatenate([schedule[:, 1], np.zeros(samples, np.int32)]).astype(bool)
    warm = np.arange(warmup + samples) < warmup
    # `base` (deprecated since BlackJAX 1.7, hence the pin <1.8 in pyproject.toml) gives
    # the adaptation's init/update/final, so that warm-up and sampling share one kernel;
    # `blackjax.window_adaptation` would compile the gradient twice.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"window_adaptation\.base", DeprecationWarning)
        adapt_init, adapt_update, adapt_final = window_base(
            False, target_accept, initial_inverse_mass_matrix=inv_mass,
            imm_shrinkage_to_previous=shrinkage)
    kernel = blackjax.mcmc.nuts.build_kernel()

    def one(key, u0):
        # Strong dtypes throughout, so that the scan's carry keeps its type.
        adapt = jax.tree.map(lambda v: jnp.array(v, dtype=jnp.result_type(v)),
                             adapt_init(u0, jnp.asarray(1.0, u0.dtype)))
        carry0 = (blackjax.mcmc.nuts.init(u0, logdensity), adapt, adapt.step_size,
                  adapt.inverse_mass_matrix)

        def step(carry, x):
            state, adapt, step_size, imm = carry
            k, is_warm, st, end = x
            step_size = jnp.where(is_warm, adapt.step_size, step_size)
            imm = jnp.where(is_warm, adapt.inverse_mass_matrix, imm)
            state, info = kernel(k, state, logdensity, step_size, imm, max_depth)
            new = adapt_update(adapt, (st, end), state.position, info.acceptance_rate)
            adapt = jax.tree.map(lambda n, o: jnp.where(is_warm, n, o), new, adapt)
            final_step, final_imm = adapt_final(adapt)
            step_size = jnp.where(is_warm, final_step, step_size)
            imm = jnp.where(is_warm, final_imm, imm)
            return (state, adapt, step_size, imm), (
                state.position, info.is_divergent, info.acceptance_rate,
                info.num_integration_steps)

        xs = (jr.split(key, warmup + samples), jnp.asarray(warm), jnp.asarray(stage),
              jnp.asarray(window_end))
        (_, _, step_size, _), (u, div, acc, n_steps) = jax.lax.scan(step, carry0, xs)
        return {"u": u[warmup:], "divergent": div[warmup:], "accept": acc[warmup:],
                "n_steps": n_steps[warmup:], "step_size": step_size}

    return jax.vmap(one)(jr.split(k_run, chains), starts)


def sample_fits(model: eqx.Module, residuals, data: PyTree, result, prior: LogUniformBox,
                key: PRNGKeyArray, *, warmup: int = 300, samples: int = 500, chains: int = 4,
                max_depth: int = 8) -> dict[str, Array]:
    """[`nuts`][nrtjax.fitting.posterior.nuts] on every subject of a least-squares fit
    `result` ([`nrtjax.fit`][] of `model` on `data` with `residuals`), subjects and
    chains vmapped in one compiled program: each subject's chains start at its optimum,
    the mass matrix at the Laplace approximation from the fit's own Hessian
    ([`laplace_least_squares`][nrtjax.fitting.posterior.laplace_least_squares]).

    **Returns:** `nuts`'s arrays with a leading subject axis, and `theta`, the draws in
    parameter units `(subjects, chains, samples, p)`.
    """
    from ._params import ParamSpace

    space = ParamSpace(tuple(result.names))
    u_hat = prior.to_u(result.params)

    def subject(k, u0, theta, hess, loss, n_obs, datum):
        lp = least_squares_log_posterior(model, residuals, datum, space, prior)
        inv_mass = laplace_least_squares(prior, theta, hess, loss, n_obs)
        draws = nuts(lp, u0, k, warmup=warmup, samples=samples, chains=chains,
                     inverse_mass=inv_mass, max_depth=max_depth)
        return {**draws, "theta": prior.to_theta(draws["u"])}

    n = u_hat.shape[0]
    # The optimum mapped into the prior's box (clipped inside it by `to_u`).
    return jax.jit(jax.vmap(subject))(jr.split(key, n), u_hat, prior.to_theta(u_hat),
                                      result.hessian, result.loss, result.n_obs, data)


def split_rhat(x: np.ndarray) -> np.ndarray:
    """Split R-hat (Gelman et al., BDA3 11.4) of `x` `(chains, draws, ...)`: each chain
    cut in two halves, then Gelman and Rubin's potential scale reduction."""
    x = np.asarray(x, float)
    half = x.shape[1] // 2
    halves = np.concatenate([x[:, :half], x[:, half:2 * half]], axis=0)
    m = halves.mean(axis=1)
    w = halves.var(axis=1, ddof=1).mean(axis=0)
    b = half * m.var(axis=0, ddof=1)
    var = (half - 1) / half * w + b / half
    return np.sqrt(var / np.where(w > 0, w, np.nan))


def ess(x: np.ndarray) -> np.ndarray:
    """Effective sample size of `x` `(chains, draws, ...)` (BlackJAX's, Geyer's initial
    monotone sequence over the chains' pooled autocorrelation)."""
    import blackjax

    x = jnp.asarray(np.asarray(x, float))
    # Jitted: op by op, each of its operations would compile apart (~100 of them).
    return np.asarray(jax.jit(blackjax.diagnostics.effective_sample_size,
                              static_argnames=("chain_axis", "sample_axis"))(
        x, chain_axis=0, sample_axis=1))


def summarise(theta: np.ndarray, names: Sequence[str], *, credible: float = 0.95
              ) -> list[dict]:
    """Per parameter of `theta` `(chains, draws, p)`: mean, median, sd, the central
    `credible` interval, split R-hat and ESS."""
    theta = np.asarray(theta, float)
    flat = theta.reshape(-1, theta.shape[-1])
    lo_q, hi_q = (1 - credible) / 2, 1 - (1 - credible) / 2
    rh = split_rhat(theta) if theta.shape[0] > 1 else np.full(theta.shape[-1], np.nan)
    es = ess(theta) if theta.shape[0] > 1 else np.full(theta.shape[-1], np.nan)
    return [{"param": name, "mean": float(flat[:, j].mean()),
             "median": float(np.median(flat[:, j])), "sd": float(flat[:, j].std(ddof=1)),
             "ci_low": float(np.quantile(flat[:, j], lo_q)),
             "ci_high": float(np.quantile(flat[:, j], hi_q)),
             "rhat": float(rh[j]), "ess": float(es[j])} for j, name in enumerate(names)]
