"""`fit`: gradient fitting of named model parameters, vmapped over subjects."""

from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from ._params import Bounds, ParamSpace
from ._uncertainty import laplace

Residuals = Callable[[eqx.Module, PyTree], tuple[Float[Array, " n"], Float[Array, " n"]]]


def make_optimizer(learning_rate: float = 0.05, *, steps: int = 300, clip: float = 10.0,
                   final_fraction: float = 0.1) -> optax.GradientTransformation:
    """The default optimiser of [`nrtjax.fit`][]: clip, then Adam, then a cosine schedule.

    **Arguments:**

    - `learning_rate`: peak step in the unconstrained space (0.05 = about 5% per step
        for a positive parameter).
    - `steps`: length of the cosine decay; `final_fraction`: its final fraction of
        `learning_rate`.
    - `clip`: global-norm gradient clip, applied before Adam's scaling.
    """
    schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=final_fraction)
    return optax.chain(optax.clip_by_global_norm(clip), optax.scale_by_adam(),
                       optax.scale_by_learning_rate(schedule))


class FitResult(eqx.Module):
    """What [`nrtjax.fit`][] returns (every array has a leading subject axis).

    - `names`: the fitted parameters, in column order.
    - `params`: best fitted values, `(subjects, p)`.
    - `loss`: the loss (weighted mean squared residual) at `params`.
    - `history`: loss per step of the best restart, `(subjects, steps)`, NaN after an
        early stop.
    - `restart_loss`: the best loss of every restart, `(subjects, restarts)`.
    - `steps_run`: optimisation steps taken by the best restart.
    - `n_obs`: number of residuals (the sum of the weights).
    - `hessian`: Hessian of the loss in the parameters at `params`, `(subjects, p, p)`.
    - `cov`, `se`: Laplace covariance $\\hat\\sigma^2 (n H/2)^{-1}$ with
        $\\hat\\sigma^2 = n\\,\\text{loss}/(n - p)$, and standard errors; `inf` along
        directions the data do not constrain (see [`nrtjax.fit.identifiability`][]).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    log_scaled: tuple[bool, ...] = eqx.field(static=True)
    params: Float[Array, "s p"]
    loss: Float[Array, " s"]
    history: Float[Array, "s steps"]
    restart_loss: Float[Array, "s r"]
    steps_run: Int[Array, " s"]
    n_obs: Float[Array, " s"]
    hessian: Float[Array, "s p p"]
    cov: Float[Array, "s p p"]
    se: Float[Array, "s p"]

    def model(self, template: eqx.Module, subject: int = 0) -> eqx.Module:
        """`template` with subject `subject`'s fitted values."""
        space = ParamSpace(self.names, {})
        return space.set(template, self.params[subject])


def _mean_sq(residuals: Residuals, model, datum) -> Float[Array, ""]:
    r, w = residuals(model, datum)
    return jnp.sum(w * r**2) / jnp.maximum(jnp.sum(w), 1.0)


def _descend(loss_u, u0, optim, steps: int, patience: int, rtol: float):
    """Optimise from `u0`; stop after `patience` steps without relative improvement
    `rtol`. Returns (best u, best loss, history, steps taken)."""
    value_and_grad = jax.value_and_grad(loss_u)
    hist0 = jnp.full((steps,), jnp.nan, dtype=u0.dtype)
    inf = jnp.asarray(jnp.inf, dtype=u0.dtype)
    carry0 = (jnp.asarray(0), u0, optim.init(u0), u0, inf, jnp.asarray(0), hist0)

    def cond(c):
        step, *_, since, _ = c
        return (step < steps) & (since < patience)

    def body(c):
        step, u, state, best_u, best, since, hist = c
        loss, g = value_and_grad(u)
        ok = jnp.isfinite(loss) & jnp.all(jnp.isfinite(g))
        # A non-finite step (a diverging trial) is skipped rather than poisoning Adam.
        g = jnp.where(ok, g, 0.0)
        # Extra arguments are ignored by plain transformations (Adam) and used by those
        # with a line search (optax.lbfgs).
        updates, state = optim.update(g, state, u, value=loss, grad=g, value_fn=loss_u)
        bar = jnp.where(jnp.isfinite(best), best - rtol * jnp.abs(best), jnp.inf)
        improved = ok & (loss < bar)
        best_u = jnp.where(improved, u, best_u)
        best = jnp.where(improved, loss, best)
        since = jnp.where(improved, 0, since + 1)
        return (step + 1, u + updates, state, best_u, best, since, hist.at[step].set(loss))

    step, _, _, best_u, best, _, hist = jax.lax.while_loop(cond, body, carry0)
    return best_u, best, hist, step


@eqx.filter_jit
def _fit_cohort(model, residuals, data, space, u0, optimizer, learning_rate, steps, patience,
                rtol):
    optim = make_optimizer(learning_rate, steps=steps) if optimizer is None else optimizer
    def loss_theta(theta, datum):
        return _mean_sq(residuals, space.set(model, theta), datum)

    def subject(u0_s, datum):
        loss_u = lambda u: loss_theta(space.constrain(u), datum)
        run = lambda u: _descend(loss_u, u, optim, steps, patience, rtol)
        best_u, best, hist, taken = jax.vmap(run)(u0_s)
        j = jnp.argmin(jnp.where(jnp.isfinite(best), best, jnp.inf))
        theta = space.constrain(best_u[j])
        hess = _fd_hessian(lambda th: loss_theta(th, datum), theta)
        r, w = residuals(space.set(model, theta), datum)
        return theta, best[j], hist[j], best, taken[j], jnp.sum(w), hess

    return jax.vmap(subject)(u0, data)


def _fd_hessian(loss, theta: Float[Array, " p"]) -> Float[Array, "p p"]:
    """The Hessian as central differences of the exact gradient, symmetrised.

    Works with every Diffrax adjoint (forward mode over RecursiveCheckpointAdjoint's
    custom VJP is not available), at the cost of $2p$ gradients. The step is relative,
    $h_j = \\epsilon^{1/3} \\max(|\\theta_j|, 1)$, the optimum for central differences.
    """
    grad = jax.grad(loss)
    h = jnp.finfo(theta.dtype).eps ** (1 / 3) * jnp.maximum(jnp.abs(theta), 1.0)
    eye = jnp.eye(theta.shape[0], dtype=theta.dtype) * h[:, None]
    cols = jax.vmap(lambda e: (grad(theta + e) - grad(theta - e)))(eye) / (2 * h[:, None])
    return 0.5 * (cols + cols.T)


def _n_subjects(data) -> int:
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jtu.tree_leaves(data)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            "Every array in data needs the same leading subject axis; got leading sizes "
            f"{sizes}. For one subject add the axis, e.g. jax.tree.map(lambda x: x[None], data).")
    return sizes.pop()


def fit(
    model: eqx.Module,
    residuals: Residuals,
    data: PyTree,
    *,
    params: Sequence[str],
    key: PRNGKeyArray,
    bounds: Mapping[str, Bounds] | None = None,
    restarts: int = 4,
    spread: float = 0.7,
    steps: int = 300,
    patience: int = 40,
    rtol: float = 1e-4,
    learning_rate: float = 0.05,
    optimizer: optax.GradientTransformation | None = None,
) -> FitResult:
    """Fit the named parameters of `model` to each subject in `data` by gradient descent.

    The loss of one subject is the weighted mean squared residual
    $L(\\theta) = \\sum_i w_i r_i(\\theta)^2 / \\sum_i w_i$. Parameters are optimised in an
    unconstrained space ([`nrtjax.fit.ParamSpace`][]: positivity and bounds by
    reparameterisation) by `optimizer` from `restarts` starting points: the template's
    values and `restarts - 1` random perturbations of them (normal, sd `spread` in the
    unconstrained space). Each run stops after `patience` steps without improvement. The
    best restart of each subject is kept, and the Hessian of $L$ at its optimum gives the
    Laplace covariance. Subjects and restarts are vmapped: a cohort is one compiled
    program. Gradients go through [`nrtjax.simulate`][] inside `residuals`.

    **Arguments:**

    - `model`: the template model; its values of `params` are the first starting point.
    - `residuals`: `(model, datum) -> (r, w)` for ONE subject: residuals and weights
        (0 marks padding), e.g. [`nrtjax.fit.TapResiduals`][].
    - `data`: a pytree of arrays with a leading subject axis.
    - `params`: names of the scalar fields to fit, e.g. `("lambda1", "lambda2")`.
    - `key`: PRNG key for the restarts.
    - `bounds`: `{name: (low, high)}`; unnamed parameters are positive.
    - `restarts`, `spread`: number of starting points and their spread.
    - `steps`, `patience`, `rtol`: step budget and early stopping.
    - `learning_rate`: of the default optimiser, `make_optimizer(learning_rate, steps=steps)`.
    - `optimizer`: any optax transformation instead (reuse one object across calls so
        that the compiled program is reused).

    **Returns:** a [`nrtjax.fit.FitResult`][].
    """
    space = ParamSpace(params, bounds, model=model)
    if restarts < 1 or steps < 1 or patience < 1:
        raise ValueError(f"restarts, steps and patience must be >= 1, got {restarts}, {steps}, "
                         f"{patience}.")
    n = _n_subjects(data)
    theta0 = space.get(model)
    lo_hi = [(lo, hi) for lo, hi in space.bounds]
    for name, t, (lo, hi) in zip(space.names, theta0.tolist(), lo_hi):
        if (lo is not None and t <= lo) or (hi is not None and t >= hi):
            raise ValueError(f"The template's {name}={t} is not inside its bounds ({lo}, {hi}); "
                             "start from a value strictly inside.")
    base = space.unconstrain(theta0)
    noise = spread * jr.normal(key, (n, restarts, base.shape[0]), dtype=base.dtype)
    noise = noise.at[:, 0].set(0.0)
    theta, loss, hist, rloss, taken, n_obs, hess = _fit_cohort(
        model, residuals, data, space, base[None, None, :] + noise, optimizer, float(learning_rate), steps,
        patience, rtol)
    cov, se = laplace(hess, loss, n_obs)
    return FitResult(names=space.names, log_scaled=space.log_scaled(), params=theta, loss=loss,
                     history=hist, restart_loss=rloss, steps_run=taken, n_obs=n_obs,
                     hessian=hess, cov=cov, se=se)
