"""Laplace uncertainty and an identifiability report from the loss Hessian."""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def laplace(hessian: Float[Array, "*s p p"], loss: Float[Array, "*s"], n_obs: Float[Array, "*s"]
            ) -> tuple[Float[Array, "*s p p"], Float[Array, "*s p"]]:
    """Laplace covariance and standard errors for a least-squares fit.

    With Gaussian residuals of unknown variance, the negative log-likelihood is
    $\\frac{n}{2\\sigma^2} L(\\theta)$ up to constants, where $L$ is the mean squared
    residual; its Hessian at the optimum is $\\frac{n}{2\\sigma^2} H$, so
    $\\mathrm{Cov} = \\frac{2\\hat\\sigma^2}{n} H^{-1}$ with $\\hat\\sigma^2 = nL/(n-p)$.
    $H^{-1}$ is taken through the eigendecomposition; a direction with an eigenvalue at the
    noise level of the Hessian ($10\\epsilon^{2/3}$ of the largest) gets infinite variance (the data do not constrain it).
    """
    p = hessian.shape[-1]
    sym = 0.5 * (hessian + jnp.swapaxes(hessian, -1, -2))
    evals, evecs = jnp.linalg.eigh(sym)
    scale = jnp.max(jnp.abs(evals), axis=-1, keepdims=True)
    # The Hessian comes from finite differences of gradients (error ~ eps^(2/3)); an
    # eigenvalue below that noise is a flat direction.
    tiny = 10 * jnp.finfo(evals.dtype).eps ** (2 / 3) * scale
    inv = jnp.where(evals > tiny, 1.0 / jnp.where(evals > tiny, evals, 1.0), jnp.inf)
    sigma2 = n_obs * loss / jnp.maximum(n_obs - p, 1.0)
    factor = (2 * sigma2 / jnp.maximum(n_obs, 1.0))[..., None]
    # inf * 0 would be NaN in V diag(1/lambda) V^T; keep inf only where a bad direction loads.
    finite_inv = jnp.where(jnp.isfinite(inv), inv, 0.0)
    cov = jnp.einsum("...ik,...k,...jk->...ij", evecs, finite_inv * factor, evecs)
    loads_bad = jnp.einsum("...ik,...k->...i", evecs**2, jnp.where(jnp.isfinite(inv), 0.0, 1.0))
    var = jnp.where(loads_bad > 1e-12, jnp.inf, jnp.diagonal(cov, axis1=-2, axis2=-1))
    return cov, jnp.sqrt(var)


def identifiability(result, *, threshold: float = 0.2) -> list[dict]:
    """Which parameter combinations each subject's data constrain.

    The Hessian is rescaled to relative units, $S = D H D$ with $D = \\mathrm{diag}(\\theta)$
    for positive parameters (so a direction is a combination of $\\log\\theta$), and
    diagonalised. Along eigenvector $v_k$ (eigenvalue $s_k$) the Laplace standard
    deviation is $\\sqrt{2\\hat\\sigma^2/(n s_k)}$: a combination is *constrained* when that
    is below `threshold` (0.2 = known to about 20%).

    **Arguments:**

    - `result`: a [`nrtjax.fitting.FitResult`][].
    - `threshold`: largest relative standard deviation counted as constrained.

    **Returns:** one dict per subject with `eigenvalues` (ascending), `directions`
    (each a dict `{combination, eigenvalue, sd, constrained}`; `combination` reads like
    `+0.71 log lambda1 -0.71 log lambda2`), `condition_number` and `n_constrained`.
    """
    names, logs = result.names, result.log_scaled
    reports = []
    for s in range(result.params.shape[0]):
        theta = np.asarray(result.params[s], dtype=np.float64)
        d = np.where(np.asarray(logs), theta, 1.0)
        h = np.asarray(result.hessian[s], dtype=np.float64)
        scaled = d[:, None] * (0.5 * (h + h.T)) * d[None, :]
        evals, evecs = np.linalg.eigh(scaled)
        n = float(result.n_obs[s])
        sigma2 = n * float(result.loss[s]) / max(n - len(names), 1.0)
        directions = []
        for k in range(len(evals)):
            v = evecs[:, k] * np.sign(evecs[np.argmax(np.abs(evecs[:, k])), k])
            sd = float(np.sqrt(2 * sigma2 / (n * evals[k]))) if evals[k] > 0 else float("inf")
            terms = " ".join(f"{c:+.2f} {'log ' if lg else ''}{nm}"
                             for c, nm, lg in zip(v, names, logs) if abs(c) >= 0.05)
            directions.append({"combination": terms, "eigenvalue": float(evals[k]), "sd": sd,
                               "constrained": bool(sd < threshold)})
        top = float(np.max(np.abs(evals)))
        low = float(np.min(evals))
        reports.append({
            "eigenvalues": evals.tolist(),
            "directions": directions,
            "condition_number": top / low if low > 0 else float("inf"),
            "n_constrained": sum(dct["constrained"] for dct in directions),
        })
    return reports


