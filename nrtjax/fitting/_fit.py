"""`fit`: gradient fitting of named model parameters, vmapped over subjects."""

from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.tree_util as jtu
import optax
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from .._train import make_optimizer
from ._params import Bounds, ParamSpace
from ._uncertainty import laplace

Residuals = Callable[[eqx.Module, PyTree], tuple[Float[Array, " n"], Float[Array, " n"]]]


class FitResult(eqx.Module):
    """What [`nrtjax.fitting`][] returns (every array has a leading subject axis).

    - `names`: the fitted parameters, in column order.
    - `params`: best fitted values, `(subjects, p)`.
    - `loss`: the loss (weighted mean squared residual) at `params`.
    - `history`: loss per step of the best restart, `(subjects, steps)`, NaN after an
        early stop.
    - `restart_loss`: the best loss of every restart, `(subjects, restarts)`, reached at
        `restart_params`, `(subjects, restarts, p)`.
    - `steps_run`: optimisation steps taken by the best restart.
    - `n_obs`: number of residuals (the sum of the weights).
    - `grad_norm`: norm of the loss gradient at `params`, in log coordinates for positive
        parameters.
    - `newton_step`: the largest component of the Newton step $H^{-1}g$ still to go, in
        the same coordinates (0.01 = the optimum is within 1%); `inf` where $H$ is not
        positive definite (not at a minimum).
    - `plateau`: True where the best restart stopped because the loss stopped improving
        (`patience` steps without a relative gain of `rtol`), False where it ran out of steps.
    - `n_at_best`: how many restarts ended within 1% of the best loss (the global
        optimum found more than once is a sign it is the global one).
    - `design_params`, `design_loss`: the global start design and each subject's loss
        there, `(subjects, starts, p)` and `(subjects, starts)` (`starts` = 0 without one).
    - `hessian`: Hessian of the loss in the parameters at `params`, `(subjects, p, p)`
        (Gauss-Newton, $2J^TJ$, for `method="lm"`).
    - `cov`, `se`: Laplace covariance $\\hat\\sigma^2 (n H/2)^{-1}$ with
        $\\hat\\sigma^2 = n\\,\\text{loss}/(n - p)$, and standard errors; `inf` along
        directions the data do not constrain (see [`nrtjax.fitting.identifiability`][]).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    log_scaled: tuple[bool, ...] = eqx.field(static=True)
    bounds: tuple[Bounds, ...] = eqx.field(static=True)
    params: Float[Array, "s p"]
    loss: Float[Array, " s"]
    history: Float[Array, "s steps"]
    restart_loss: Float[Array, "s r"]
    restart_params: Float[Array, "s r p"]
    steps_run: Int[Array, " s"]
    n_obs: Float[Array, " s"]
    grad_norm: Float[Array, " s"]
    newton_step: Float[Array, " s"]
    plateau: Bool[Array, " s"]
    n_at_best: Int[Array, " s"]
    design_params: Float[Array, "s d p"]
    design_loss: Float[Array, "s d"]
    hessian: Float[Array, "s p p"]
    cov: Float[Array, "s p p"]
    se: Float[Array, "s p"]

    def converged(self, *, step_tol: float = 1e-2) -> np.ndarray:
        """Per subject: the best restart stopped on a plateau at a minimum (positive
        definite Hessian) with less than `step_tol` (relative) of Newton step to go."""
        return np.asarray(self.plateau) & (np.asarray(self.newton_step) < step_tol)

    def model(self, template: eqx.Module, subject: int = 0) -> eqx.Module:
        """`template` with subject `subject`'s fitted values."""
        space = ParamSpace(self.names, dict(zip(self.names, self.bounds)))
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


def _scaled(residuals: Residuals, model, datum) -> Float[Array, " n"]:
    """Residuals scaled so that their sum of squares is the loss."""
    return _scale(*residuals(model, datum))


def _scale(r, w):
    return jnp.where(w > 0, r * jnp.sqrt(w / jnp.maximum(jnp.sum(w), 1.0)), 0.0)


def _sq(r):
    v = jnp.sum(r**2)
    return jnp.where(jnp.isfinite(v), v, jnp.inf)


def _stencil(x, h):
    """`x` and `x +- h_j e_j`, `(2p + 1, p)`; `h` is a scalar or per coordinate."""
    p = x.shape[0]
    steps = jnp.eye(p, dtype=x.dtype) * jnp.broadcast_to(jnp.asarray(h, x.dtype), (p,))[:, None]
    return jnp.concatenate([x[None], x[None] + steps, x[None] - steps])


def _central(out, h):
    """From `f` evaluated on `_stencil(x, h)` (each leaf stacked on axis 0): `(f(x),
    central-difference Jacobian)`, `(n, p)` for a vector leaf."""
    def jac(o):
        p = (o.shape[0] - 1) // 2
        hp = jnp.broadcast_to(jnp.asarray(h, o.dtype), (p,)).reshape((p,) + (1,) * (o.ndim - 1))
        return jnp.moveaxis((o[1:p + 1] - o[p + 1:]) / (2 * hp), 0, -1)

    return jtu.tree_map(lambda o: o[0], out), jtu.tree_map(jac, out)


def _around(f, x, h):
    """`f` at `x` and at `x +- h_j e_j`, as one vmapped call (one copy of `f` in the
    compiled program, where three calls would compile it three times). Returns
    `(f(x), central-difference Jacobian (n, p))`; `h` is a scalar or per coordinate."""
    return _central(jax.vmap(f)(_stencil(x, h)), h)


def _lm(resid_u, u0, steps, patience: int, rtol: float, h: float = 1e-5, *,
        history: bool = True, alt=None, alt_ok=None):
    """Levenberg-Marquardt (Marquardt 1963; Nielsen's damping update) on the residual
    vector `resid_u(u)`, whose sum of squares is the loss. The Jacobian is taken by
    central differences: forward runs only, and the reverse-mode tape of a long
    simulation is never built. Stops after `patience` iterations without a relative gain
    of `rtol`, or after `steps`. Same returns as `_descend`; with `history=False` the
    history is None and `steps` may be traced.

    Every residual evaluation is in one place, a vmapped call on `2p + 1` points inside
    the loop, so that the compiled program holds one copy of `resid_u` (each copy of a
    simulation costs seconds of compilation): an iteration evaluates the trial point
    $u + \\delta$ and the Jacobian's points around it, so the Jacobian of an accepted point
    is at hand for the next one; a first pass evaluates the start and the points around
    it. With `alt` (a second start, `(p,)`), a pass before that evaluates both starts and
    the fit starts from the one with the smaller loss (`alt` only where `alt_ok`); its
    two losses are then returned as well."""
    p = u0.shape[0]
    dt = u0.dtype
    eye = jnp.eye(p, dtype=dt)
    r_shape = jax.eval_shape(resid_u, u0)
    hist0 = jnp.full((steps,), jnp.nan, dtype=dt) if history else None
    # Phases: 0 evaluates the two starts (with `alt`), 1 the start, 2 iterates.
    phase0 = jnp.asarray(0 if alt is not None else 1)
    carry0 = (phase0, jnp.asarray(0), u0, jnp.zeros(r_shape.shape, r_shape.dtype),
              jnp.zeros(r_shape.shape + (p,), r_shape.dtype), jnp.asarray(jnp.inf, dt),
              jnp.asarray(1e-3, dt), jnp.asarray(2.0, dt), jnp.asarray(0), hist0,
              jnp.full((2,), jnp.inf, dt))

    def cond(c):
        _, step, *_, since, _, _ = c
        return (step < steps) & (since < patience)

    def body(c):
        phase, step, u, r, jac, loss, mu, nu, since, hist, starts = c
        iterating = phase == 2
        g = jac.T @ r
        a = jac.T @ jac
        damp = mu * jnp.maximum(jnp.max(jnp.diagonal(a)), 1e-12)
        delta = -jnp.linalg.solve(a + damp * eye, g)
        delta = jnp.where(jnp.all(jnp.isfinite(delta)), delta, 0.0)
        x = jnp.where(iterating, u + delta, u)
        points = _stencil(x, h)
        if alt is not None:
            two = jnp.concatenate([jnp.stack([u0, alt]), jnp.broadcast_to(u0, (2 * p - 1, p))])
            points = jnp.where(phase == 0, two, points)
        out = jax.vmap(resid_u)(points)
        r_new, jac_new = _central(out, h)  # (n,), (n, p)
        jac_new = jnp.where(jnp.isfinite(jac_new), jac_new, 0.0)
        new = _sq(r_new)
        if alt is not None:
            la = new
            lb = jnp.where(alt_ok, _sq(out[1]), jnp.inf)
            first = phase == 0
            starts = jnp.where(first, jnp.stack([la, lb]), starts)
            u = jnp.where(first, jnp.where(lb < la, alt, u0), u)
        predicted = -(delta @ g) - 0.5 * delta @ (a @ delta)  # half the model decrease
        rho = (loss - new) / jnp.maximum(2 * predicted, 1e-300)
        accept = iterating & (new < loss)
        mu = jnp.where(accept, mu * jnp.maximum(1 / 3, 1 - (2 * rho - 1) ** 3),
                       jnp.where(iterating, mu * nu, mu))
        nu = jnp.where(accept, 2.0, jnp.where(iterating, 2 * nu, nu))
        gained = accept & (loss - new > rtol * loss)
        take = accept | (phase == 1)
        u = jnp.where(accept, x, u)
        r = jnp.where(take, r_new, r)
        jac = jnp.where(take, jac_new, jac)
        loss = jnp.where(take, new, loss)
        since = jnp.where(gained, 0, jnp.where(iterating, since + 1, since))
        if history:
            hist = jnp.where(iterating, hist.at[step].set(loss), hist)
        return (jnp.minimum(phase + 1, 2), step + iterating, u, r, jac, loss,
                jnp.clip(mu, 1e-12, 1e12), nu, since, hist, starts)

    _, step, u, _, _, loss, *_, hist, starts = jax.lax.while_loop(cond, body, carry0)
    if alt is not None:
        return u, loss, hist, step, starts
    return u, loss, hist, step


@eqx.filter_jit
def _fit_cohort(model, residuals, data, space, u0, optimizer, learning_rate, steps, patience,
                rtol, method="adam"):
    if optimizer is None:  # fit's own schedule: a wide clip, and no lower than 10% at the end
        optimizer = make_optimizer(learning_rate, total_steps=steps, final_fraction=0.1,
                                   clip_norm=10.0)
    optim = optimizer
    def loss_theta(theta, datum):
        return _mean_sq(residuals, space.set(model, theta), datum)

    def subject(u0_s, datum):
        def loss_u(u):
            return loss_theta(space.constrain(u), datum)
        if method == "lm":
            def resid_u(u):
                return _scaled(residuals, space.set(model, space.constrain(u)), datum)
            def run(u):
                return _lm(resid_u, u, steps, patience, rtol)
        else:
            def run(u):
                return _descend(loss_u, u, optim, steps, patience, rtol)
        best_u, best, hist, taken = jax.vmap(run)(u0_s)
        finite = jnp.where(jnp.isfinite(best), best, jnp.inf)
        j = jnp.argmin(finite)
        theta = space.constrain(best_u[j])
        if method == "lm":
            # Gauss-Newton: H = 2 J^T J and g = 2 J^T r from a central-difference
            # Jacobian (forward runs only; exact for residuals linear in theta).
            (r_s, w), (jac, _) = _fd_jacobian(
                lambda th: _with_weights(residuals, space.set(model, th), datum), theta)
            hess, grad = 2 * jac.T @ jac, 2 * jac.T @ r_s
        else:
            w = residuals(space.set(model, theta), datum)[1]
            hess, grad = _fd_hessian(lambda th: loss_theta(th, datum), theta)
        n_best = jnp.sum(finite <= finite[j] * 1.01 + 1e-12)
        plateau = taken[j] < steps
        ends = jax.vmap(space.constrain)(best_u)
        return (theta, best[j], hist[j], best, taken[j], jnp.sum(w), hess, grad, plateau, n_best,
                ends)

    # One subject after the other (its restarts vmapped), not all vmapped together: a
    # vmapped while_loop runs until its slowest member stops and every member pays for
    # those iterations, so one subject that needs all `steps` would hold up the cohort
    # (docs/fitting.md, Cost). The global design, where every point costs the same, stays
    # vmapped over subjects (`_design_loss`).
    (theta, loss, hist, rloss, taken, n_obs, hess, grad, plateau, n_best,
     ends) = jax.lax.map(lambda args: subject(*args), (u0, data))
    # In the same program, not op by op after it (each eager operation compiles apart).
    cov, se = laplace(hess, loss, n_obs)
    gnorm, newton = _convergence(space, theta, grad, hess)
    return (theta, loss, hist, rloss, taken, n_obs, hess, plateau, n_best, ends, cov, se,
            gnorm, newton)


@eqx.filter_jit
def _design_loss(model, residuals, data, space, u):
    """The loss of every subject at every start, `u` of shape `(subjects, starts, p)`:
    one vmapped program."""
    def one(u_s, datum):
        return jax.vmap(lambda v: _mean_sq(residuals, space.set(model, space.constrain(v)),
                                           datum))(u_s)
    return jax.vmap(one)(u, data)


def design(space: ParamSpace, ranges: Sequence[tuple[float, float]], n: int,
           seed: int = 0) -> np.ndarray:
    """`n` scrambled Sobol points (Owen scrambling, `seed`) filling the box `ranges`,
    uniform in $\\log\\theta$ for positive parameters and in $\\theta$ otherwise, as
    unconstrained vectors `(n, p)`."""
    from scipy.stats import qmc  # here, not at import: `import nrtjax` stays light

    p = len(space.names)
    unit = qmc.Sobol(d=p, scramble=True, seed=seed).random(n)
    logs = space.log_scaled()
    cols = []
    for j, ((lo, hi), lg) in enumerate(zip(ranges, logs)):
        if lg:
            cols.append(np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * unit[:, j]))
        else:
            cols.append(lo + (hi - lo) * unit[:, j])
    theta = np.stack(cols, 1)
    return np.asarray(jax.vmap(space.unconstrain)(jnp.asarray(theta)))


def _pick(u: np.ndarray, loss: np.ndarray, k: int, sep: float) -> np.ndarray:
    """Indices of the `k` lowest losses, greedily skipping points within `sep`
    (max-norm, unconstrained units) of one already picked, so that the refined starts
    sit in different basins where the design has them."""
    order = np.argsort(np.where(np.isfinite(loss), loss, np.inf))
    chosen: list[int] = []
    for i in order:
        if all(np.max(np.abs(u[i] - u[c])) > sep for c in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    for i in order:  # fewer distinct basins than k: fill up with the next best
        if len(chosen) == k:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return np.asarray(chosen)


def _with_weights(residuals: Residuals, model, datum):
    """The scaled residuals (`_scaled`) and the weights."""
    r, w = residuals(model, datum)
    return _scale(r, w), w


def _fd_step(theta):
    """Relative central-difference step $\\epsilon^{1/3}\\max(|\\theta_j|, 1)$."""
    return jnp.finfo(theta.dtype).eps ** (1 / 3) * jnp.maximum(jnp.abs(theta), 1.0)


def _fd_jacobian(resid, theta):
    """`resid(theta)` and the central-difference Jacobian of a residual vector (of each
    leaf of what `resid` returns: `(n, p)` for a vector), step `_fd_step`, `2p + 1`
    evaluations in one vmapped call."""
    return _around(resid, theta, _fd_step(theta))


def _fd_hessian(loss, theta: Float[Array, " p"]
                ) -> tuple[Float[Array, "p p"], Float[Array, " p"]]:
    """The Hessian as central differences of the exact gradient, symmetrised, and the
    gradient at `theta`.

    Works with every Diffrax adjoint (forward mode over RecursiveCheckpointAdjoint's
    custom VJP is not available), at the cost of $2p + 1$ gradients (one vmapped call).
    The step is relative, $h_j = \\epsilon^{1/3} \\max(|\\theta_j|, 1)$, the optimum for
    central differences.
    """
    grad, cols = _around(jax.grad(loss), theta, _fd_step(theta))
    return 0.5 * (cols + cols.T), grad


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
    starts: int = 0,
    start_ranges: Mapping[str, tuple[float, float]] | None = None,
    method: str = "adam",
) -> FitResult:
    """Fit the named parameters of `model` to each subject in `data` by gradient descent.

    The loss of one subject is the weighted mean squared residual
    $L(\\theta) = \\sum_i w_i r_i(\\theta)^2 / \\sum_i w_i$. Parameters are optimised in an
    unconstrained space ([`nrtjax.fitting.ParamSpace`][]: positivity and bounds by
    reparameterisation) by `optimizer` from `restarts` starting points: the template's
    values and `restarts - 1` random perturbations of them (normal, sd `spread` in the
    unconstrained space). Each run stops after `patience` steps without improvement. The
    best restart of each subject is kept, and the Hessian of $L$ at its optimum gives the
    Laplace covariance.

    With `starts > 0` the fit is global instead: $L$ is evaluated at `starts` scrambled
    Sobol points filling `start_ranges` (log-uniform for positive parameters; all
    subjects and points in one vmapped program), and the `restarts` best points of each
    subject, taken from different cells of the design where possible, are refined by
    gradient. A loss with narrow basins (ASHLE's tap loss along $\\lambda_1$, see
    docs/fitting.md) needs this: gradient descent from a fixed template stops in
    whichever basin holds the template. A cohort is one compiled program: the design
    vmapped over subjects and points, the refinement subject by subject with each
    subject's restarts vmapped (a vmapped loop runs until its slowest member stops).
    Gradients go through [`nrtjax.simulate`][] inside `residuals`.

    **Arguments:**

    - `model`: the template model; its values of `params` are the first starting point.
    - `residuals`: `(model, datum) -> (r, w)` for ONE subject: residuals and weights
        (0 marks padding), e.g. [`nrtjax.fitting.TapResiduals`][].
    - `data`: a pytree of arrays with a leading subject axis.
    - `params`: names of the scalar fields to fit, e.g. `("lambda1", "lambda2")`.
    - `key`: PRNG key for the restarts.
    - `bounds`: `{name: (low, high)}`; unnamed parameters are positive.
    - `restarts`, `spread`: number of starting points and their spread.
    - `steps`, `patience`, `rtol`: step budget and early stopping.
    - `learning_rate`: of the default optimiser, [`nrtjax.make_optimizer`][]`(learning_rate,
        total_steps=steps, final_fraction=0.1, clip_norm=10.0)`.
    - `optimizer`: any optax transformation instead (reuse one object across calls so
        that the compiled program is reused).
    - `starts`: size of the global start design (0: start from the template and
        `restarts - 1` random perturbations of it).
    - `start_ranges`: `{name: (low, high)}` box of the design, required for every
        fitted parameter when `starts > 0`.
    - `method`: `"adam"` (the optax `optimizer`, one gradient per step) or `"lm"`
        (Levenberg-Marquardt on the residuals, a central-difference Jacobian per step:
        $2p + 1$ forward runs and no reverse pass; it reaches the bottom of a basin in
        about ten steps where Adam takes a hundred, `steps` and `patience` then count
        its iterations).

    **Returns:** a [`nrtjax.fitting.FitResult`][].
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
    if starts > 0:
        u0, d_u, d_loss = _global_starts(model, residuals, data, space, starts, start_ranges,
                                         restarts, key)
        d_theta = jax.vmap(space.constrain)(jnp.asarray(d_u, base.dtype))
        d_theta = jnp.broadcast_to(d_theta, (n, *d_theta.shape))
    else:
        noise = spread * jr.normal(key, (n, restarts, base.shape[0]), dtype=base.dtype)
        u0 = base[None, None, :] + noise.at[:, 0].set(0.0)
        d_theta = jnp.zeros((n, 0, base.shape[0]), base.dtype)
        d_loss = jnp.zeros((n, 0), base.dtype)
    if method not in ("adam", "lm"):
        raise ValueError(f"method={method!r}: choose 'adam' or 'lm'.")
    (theta, loss, hist, rloss, taken, n_obs, hess, plateau, n_best, ends, cov, se, gnorm,
     newton) = _fit_cohort(
        model, residuals, data, space, u0, optimizer, float(learning_rate), steps,
        patience, rtol, method)
    return FitResult(names=space.names, log_scaled=space.log_scaled(), bounds=space.bounds,
                     params=theta, loss=loss, design_params=d_theta,
                     design_loss=jnp.asarray(d_loss, base.dtype),
                     history=hist, restart_loss=rloss, restart_params=ends, steps_run=taken,
                     n_obs=n_obs,
                     grad_norm=gnorm, newton_step=newton, plateau=plateau, n_at_best=n_best,
                     hessian=hess, cov=cov, se=se)


def _convergence(space, theta, grad, hess):
    """The gradient norm and the length of the Newton step still to go, both in the
    coordinates reported (log for positive parameters): a step below 0.01 means the
    optimum is within 1% of `theta`."""
    d = jnp.where(jnp.asarray(space.log_scaled()), theta, 1.0)
    g = grad * d
    h = d[..., :, None] * hess * d[..., None, :]
    step = jnp.linalg.solve(h, g[..., None])[..., 0]
    pd = jnp.all(jnp.linalg.eigvalsh(0.5 * (h + jnp.swapaxes(h, -1, -2))) > 0, axis=-1)
    newton = jnp.where(pd, jnp.max(jnp.abs(step), axis=-1), jnp.inf)
    return jnp.linalg.norm(g, axis=-1), newton


def _global_starts(model, residuals, data, space, starts, start_ranges, k, key):
    ranges = dict(start_ranges or {})
    missing = [nm for nm in space.names if nm not in ranges]
    if missing:
        raise ValueError(f"starts={starts} needs start_ranges for {missing}, e.g. "
                         "{'lambda1': (0.5, 20.0)}.")
    box = [tuple(float(v) for v in ranges[nm]) for nm in space.names]
    for nm, (lo, hi), lg in zip(space.names, box, space.log_scaled()):
        if not lo < hi or (lg and lo <= 0):
            raise ValueError(f"start_ranges[{nm!r}] = ({lo}, {hi}) must be an increasing "
                             "pair (positive for a positive parameter).")
    if k > starts:
        raise ValueError(f"restarts={k} cannot exceed starts={starts}.")
    seed = int(jr.randint(key, (), 0, 2**31 - 1))
    u = design(space, box, starts, seed)
    dtype = space.get(model).dtype
    n = _n_subjects(data)
    grid = jnp.broadcast_to(jnp.asarray(u, dtype), (n, *u.shape))
    loss = np.asarray(_design_loss(model, residuals, data, space, grid))
    sep = 0.5 * float(np.max(np.ptp(u, axis=0))) / max(starts ** (1 / u.shape[1]), 1.0)
    picks = np.stack([_pick(u, loss[i], k, sep) for i in range(n)])
    return jnp.asarray(u[picks], dtype), u, loss


@eqx.filter_jit
def _profile_scan(model, residuals, data, space, u_hat, fixed, seeds, reset, free, steps):
    """Profile traces: for each subject and each sequence `q` (one held parameter), walk
    along `fixed` (unconstrained points whose held coordinate is set, `(s, q, L, p)`),
    minimising over the free coordinates `free` (`(q, p - 1)` indices) by LM at each
    point, with at most `steps` (`(q, L)`, an array: one compiled program for every
    budget) iterations. Each point starts from the better of the previous point's optimum
    (continuation; from `u_hat` where `reset`) and `seeds` (NaN: none). Returns the
    profile loss, `(s, q, L)`."""
    def trace(u0, fix, seed, rst, n_steps, idx, datum):
        def resid(u):
            return _scaled(residuals, space.set(model, space.constrain(u)), datum)

        def point(prev, x):
            f, sd, r, n = x
            cont = jnp.where(r, u0, prev)
            v, best, _, _, (la, lb) = _lm(lambda w: resid(f.at[idx].set(w)), cont[idx], n, 2,
                                          1e-6, history=False, alt=sd[idx],
                                          alt_ok=jnp.all(jnp.isfinite(sd)))
            best = jnp.minimum(best, jnp.minimum(la, lb))
            return f.at[idx].set(v), best

        _, out = jax.lax.scan(point, u0, (fix, seed, rst, n_steps))
        return out

    per_q = jax.vmap(trace, in_axes=(None, 0, 0, 0, 0, 0, None))
    return jax.vmap(per_q, in_axes=(0, 0, 0, 0, None, None, 0))(u_hat, fixed, seeds, reset,
                                                                steps, free, data)


@eqx.filter_jit
def _loss_at(model, residuals, data, space, u):
    """Loss at unconstrained points `u`, `(s, m, p)`."""
    def one(u_s, datum):
        return jax.vmap(lambda v: _sq(_scaled(residuals, space.set(model, space.constrain(v)),
                                               datum)))(u_s)
    return jax.vmap(one)(u, data)


def profile(model: eqx.Module, residuals: Residuals, data: PyTree, result: FitResult, *,
            factor: float = 1.2, steps: int = 10, level: float = 0.999,
            scan: bool = True, scan_steps: int = 6) -> dict[str, np.ndarray]:
    """Profile likelihood of each fitted parameter, and the decision whether the data
    identify it to within a factor `factor` of the estimate.

    With Gaussian residuals of unknown variance the likelihood-ratio statistic of a
    parameter value $v$ is $\\Lambda(v) = n \\log(L_\\text{profile}(v)/\\hat L)$, where the
    other parameters are re-optimised (Levenberg-Marquardt) at each $v$; asymptotically
    $\\chi^2_1$ (Wilks 1938), so $\\{v : \\Lambda(v) < q\\}$, $q$ the `level` quantile of
    $\\chi^2_1$ (10.83 for the default 0.999; 3.841 for 0.95), is the `level`
    profile-likelihood interval. The parameter is *identified* when that interval lies
    inside the band $[\\hat\\theta_j/c, c\\,\\hat\\theta_j]$ ($c$ = `factor`;
    $\\hat\\theta_j \\pm (c - 1)|\\hat\\theta_j|$ for a parameter that is not positive), i.e.
    $\\Lambda \\ge q$ everywhere outside it. The default 0.999 is a per-parameter level
    matched to a cohort: over ~100 identified parameters it lets ~0.1 wrong ones through
    unflagged, where 0.95 lets ~5 through. The profile need not be unimodal (a
    second basin), so it is checked:

    - at the band's edges, re-optimising from the estimate (`steps` LM iterations):
        `lr_low`, `lr_high`;
    - with `scan` (and a start design), on a grid beyond the edges out to the range of
        the design and the refined restarts, in steps of $\\sqrt{c}$ (so that a basin as
        narrow as the band cannot fall between two points), each point re-optimised
        (`scan_steps` LM iterations) from the better of its neighbour's optimum and the
        best design point or restart end in its grid cell: `scan_lr`, the smallest
        $\\Lambda$ there;
    - at every point of the global design and every refined restart end outside the band
        ($\\Lambda$ of the point itself bounds the profile from above): `design_lr`.

    **Returns:** `{"lr_low", "lr_high", "scan_lr", "design_lr", "identified",
    "interval", "threshold"}`: arrays of shape `(subjects, p)` (`inf` where there is no
    point), `interval`, `(subjects, p, 2)`, the lowest and highest value checked whose
    $\\Lambda$ is below $q$ (the estimate when none is): the `level` interval, to the grid's
    resolution, and `threshold`, $q$.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level} must be a probability in (0, 1), e.g. 0.999 "
                         "(the chi-squared quantile is computed from it).")
    from scipy.stats import chi2  # here, not at import: `import nrtjax` stays light

    threshold = float(chi2.ppf(level, 1))
    space = ParamSpace(result.names, _bounds_of(result), model=model)
    theta = np.asarray(result.params, np.float64)
    s, p = theta.shape
    logs = np.asarray(space.log_scaled())
    n = np.asarray(result.n_obs)[:, None]
    best = np.asarray(result.loss)[:, None]
    # Alternatives: the design points and where every refined restart ended.
    dp = np.concatenate([np.asarray(result.design_params), np.asarray(result.restart_params)], 1)
    dloss = np.concatenate([np.asarray(result.design_loss), np.asarray(result.restart_loss)], 1)
    dl = n * np.log(np.maximum(np.where(np.isfinite(dloss), dloss, np.inf), 1e-300) / best)

    def coord(values, j):
        """Position of `values` along parameter j in units of log(factor) (or of
        (factor - 1)|estimate|) from the estimate, `(s, ...)`."""
        t = theta[:, j].reshape((s,) + (1,) * (np.ndim(values) - 1))
        if logs[j]:
            return np.log(values / t) / np.log(factor)
        return (values - t) / ((factor - 1) * np.abs(t))

    def at(k, j):
        t = theta[:, j].reshape((s,) + (1,) * (np.ndim(k) - 1))
        return t * factor**k if logs[j] else t + k * (factor - 1) * np.abs(t)

    # Grid positions k (in band units) per parameter: +-1 (the band's edges), then
    # half-steps out to the range of the alternatives.
    half = 0.5
    seqs_k = []
    for j in range(p):
        if scan and dp.shape[1]:
            c = coord(dp[:, :, j], j)
            lo = np.nan_to_num(np.min(c, 1), nan=-1.0, neginf=-1.0)
            hi = np.nan_to_num(np.max(c, 1), nan=1.0, posinf=1.0)
            n_lo = np.maximum(1, np.ceil((-lo - 1) / half + 1e-9).astype(int) + 1)
            n_hi = np.maximum(1, np.ceil((hi - 1) / half + 1e-9).astype(int) + 1)
        else:
            n_lo = n_hi = np.ones(s, int)
        seqs_k.append((n_lo, n_hi))
    length = max(int(np.max(a + b)) for a, b in seqs_k)
    ks = np.zeros((s, p, length))
    valid = np.zeros((s, p, length), bool)
    reset = np.zeros((s, p, length), bool)
    for j, (n_lo, n_hi) in enumerate(seqs_k):
        for i in range(s):
            row = [-(1 + half * m) for m in range(n_lo[i])] + [1 + half * m for m in range(n_hi[i])]
            ks[i, j, :len(row)] = row
            ks[i, j, len(row):] = row[-1]
            valid[i, j, :len(row)] = True
            reset[i, j, [0, n_lo[i]]] = True
    fixed_theta = np.broadcast_to(theta[:, None, None, :], (s, p, length, p)).copy()
    seeds_theta = np.full((s, p, length, p), np.nan)
    for j in range(p):
        fixed_theta[:, j, :, j] = at(ks[:, j], j)
        if dp.shape[1]:
            # The best alternative in each grid point's cell seeds its optimisation.
            c = coord(dp[:, :, j], j)  # (s, m)
            near = np.abs(c[:, None, :] - ks[:, j, :, None]) <= 0.5 * half  # (s, L, m)
            cand = np.where(near, np.where(np.isfinite(dloss), dloss, np.inf)[:, None, :],
                            np.inf)
            pick = np.argmin(cand, 2)
            ok = np.isfinite(np.min(cand, 2))
            chosen = np.take_along_axis(dp, pick[..., None].repeat(p, -1), 1)  # (s, L, p)
            seeds_theta[:, j] = np.where(ok[..., None], chosen, np.nan)
    dtype = result.params.dtype
    unc = jax.vmap(jax.vmap(jax.vmap(space.unconstrain)))
    fixed = unc(jnp.asarray(fixed_theta, dtype))
    seeds = jnp.where(jnp.isnan(jnp.asarray(seeds_theta, dtype)), jnp.nan,
                      unc(jnp.asarray(np.nan_to_num(seeds_theta, nan=1.0), dtype)))
    u_hat = jax.vmap(space.unconstrain)(result.params)
    if p == 1:  # nothing to re-optimise: the profile is the loss itself
        prof = np.asarray(_loss_at(model, residuals, data, space,
                                   fixed.reshape(s, p * length, p))).reshape(s, p, length)
    else:
        free = jnp.asarray([[i for i in range(p) if i != j] for j in range(p)])
        budget = np.full((p, length), scan_steps if scan else steps)
        if scan:
            # The band's edges again with the full budget, from the estimate: appended to
            # each sequence (from the estimate, no seed), so that one compiled program
            # runs both.
            edges = np.zeros((s, p, 2), int)
            for j, (n_lo, _) in enumerate(seqs_k):
                edges[:, j, 1] = n_lo
            e_fixed = jnp.take_along_axis(fixed, jnp.asarray(edges)[..., None], 2)
            fixed = jnp.concatenate([fixed, e_fixed], 2)
            seeds = jnp.concatenate([seeds, jnp.full(e_fixed.shape, jnp.nan, dtype)], 2)
            reset = np.concatenate([reset, np.ones((s, p, 2), bool)], 2)
            budget = np.concatenate([budget, np.full((p, 2), steps)], 1)
        prof = np.array(_profile_scan(model, residuals, data, space, u_hat, fixed, seeds,
                                      jnp.asarray(reset), free, jnp.asarray(budget)))
        if scan:
            prof, e_prof = prof[..., :length], prof[..., length:]
            np.put_along_axis(prof, edges, np.minimum(
                np.take_along_axis(prof, edges, 2), e_prof), 2)
    lr = n[:, :, None] * np.log(np.maximum(prof, 1e-300) / best[:, :, None])
    lr = np.where(valid, lr, np.inf)
    first_hi = np.array([[n_lo[i] for (n_lo, _) in seqs_k] for i in range(s)])
    lr_low = lr[:, :, 0]
    lr_high = np.take_along_axis(lr, first_hi[..., None], 2)[..., 0]
    outer = valid & (np.abs(ks) > 1)
    scan_lr = np.min(np.where(outer, lr, np.inf), 2)
    design_lr = np.full((s, p), np.inf)
    interval = np.repeat(theta[:, :, None], 2, 2)
    for j in range(p):
        if dp.shape[1]:
            far = np.abs(coord(dp[:, :, j], j)) > 1 + 1e-9
            design_lr[:, j] = np.min(np.where(far, dl, np.inf), axis=1)
            inside = dl < threshold
            interval[:, j, 0] = np.minimum(interval[:, j, 0], np.min(
                np.where(inside, dp[:, :, j], np.inf), 1))
            interval[:, j, 1] = np.maximum(interval[:, j, 1], np.max(
                np.where(inside, dp[:, :, j], -np.inf), 1))
        v = at(ks[:, j], j)
        inside = lr[:, j] < threshold
        interval[:, j, 0] = np.minimum(interval[:, j, 0], np.min(np.where(inside, v, np.inf), 1))
        interval[:, j, 1] = np.maximum(interval[:, j, 1], np.max(np.where(inside, v, -np.inf),
                                                                 1))
    identified = ((lr_low >= threshold) & (lr_high >= threshold) & (scan_lr >= threshold)
                  & (design_lr >= threshold))
    return {"lr_low": lr_low, "lr_high": lr_high, "scan_lr": scan_lr, "design_lr": design_lr,
            "identified": identified, "interval": interval, "threshold": threshold}


def _bounds_of(result: FitResult):
    return dict(zip(result.names, result.bounds))
