"""Selecting a model's parameters by name, with bounds by reparameterisation."""

import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

Bounds = tuple[float | None, float | None]


class ParamSpace(eqx.Module):
    """The map between a model's named scalar parameters and an unconstrained vector.

    Each parameter $\\theta_j$ lives in its interval $(l_j, h_j)$ through a smooth
    bijection from $u_j \\in \\mathbb{R}$: $\\theta = l + (h - l)\\,\\sigma(u)$ for a finite
    interval, $\\theta = l + e^{u}$ for $(l, \\infty)$ (positivity is $l = 0$) and
    $\\theta = u$ without bounds. Optimising $u$ keeps every iterate feasible, and the
    log map makes Adam's steps relative for scale parameters such as ASHLE's rates.
    """

    names: tuple[str, ...] = eqx.field(static=True)
    bounds: tuple[Bounds, ...] = eqx.field(static=True)

    def __init__(self, names: Sequence[str], bounds: Mapping[str, Bounds] | None = None,
                 *, model: eqx.Module | None = None):
        """**Arguments:**

        - `names`: the fitted parameters, attribute names of the model (e.g.
            `("lambda1", "lambda2")`).
        - `bounds`: `{name: (low, high)}`, either end `None`; a name not given is
            positive, `(0, None)`.
        - `model`: if given, each name is checked to be a scalar field of it.

        **Raises:** `ValueError` for an unknown name, an empty or invalid interval.
        """
        names = tuple(names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"params must be distinct attribute names, got {names!r}.")
        bounds = dict(bounds or {})
        for extra in set(bounds) - set(names):
            raise ValueError(f"bounds given for {extra!r}, which is not fitted ({names}).")
        if model is not None:
            for name in names:
                value = getattr(model, name, None)
                if value is None or jnp.ndim(value) != 0:
                    raise ValueError(
                        f"{type(model).__name__} has no scalar parameter {name!r}; "
                        f"fit scalar fields such as {_scalar_fields(model)}.")
        spec = []
        for name in names:
            lo, hi = bounds.get(name, (0.0, None))
            if (lo is not None and not math.isfinite(lo)) or (hi is not None and not math.isfinite(hi)):
                raise ValueError(f"bounds for {name!r} must be finite numbers or None.")
            if lo is None and hi is not None:
                raise ValueError(f"bounds for {name!r}: an upper bound needs a lower one.")
            if lo is not None and hi is not None and not lo < hi:
                raise ValueError(f"bounds for {name!r} are empty: ({lo}, {hi}).")
            spec.append((lo, hi))
        self.names = names
        self.bounds = tuple(spec)

    def constrain(self, u: Float[Array, " p"]) -> Float[Array, " p"]:
        """Unconstrained vector -> parameter values."""
        out = []
        for j, (lo, hi) in enumerate(self.bounds):
            if lo is None:
                out.append(u[j])
            elif hi is None:
                out.append(lo + jnp.exp(u[j]))
            else:
                out.append(lo + (hi - lo) * jax_sigmoid(u[j]))
        return jnp.stack(out)

    def unconstrain(self, theta: Float[Array, " p"]) -> Float[Array, " p"]:
        """Parameter values (strictly inside their bounds) -> unconstrained vector."""
        out = []
        for j, (lo, hi) in enumerate(self.bounds):
            if lo is None:
                out.append(theta[j])
            elif hi is None:
                out.append(jnp.log(theta[j] - lo))
            else:
                s = (theta[j] - lo) / (hi - lo)
                out.append(jnp.log(s) - jnp.log1p(-s))
        return jnp.stack(out)

    def get(self, model: eqx.Module) -> Float[Array, " p"]:
        """The fitted parameters' current values in `model`."""
        return jnp.stack([jnp.asarray(getattr(model, n)) for n in self.names])

    def set(self, model: PyTree, theta: Float[Array, " p"]) -> PyTree:
        """`model` with the fitted parameters replaced by `theta` (via `eqx.tree_at`)."""
        leaves = [theta[j].astype(jnp.asarray(getattr(model, n)).dtype)
                  for j, n in enumerate(self.names)]
        return eqx.tree_at(lambda m: [getattr(m, n) for n in self.names], model, leaves)

    def log_scaled(self) -> tuple[bool, ...]:
        """Which parameters are positive-scale (reported on a log axis)."""
        return tuple(lo is not None and lo == 0.0 and hi is None for lo, hi in self.bounds)


def jax_sigmoid(x: Array) -> Array:
    return 0.5 * (jnp.tanh(0.5 * x) + 1.0)


def _scalar_fields(model: eqx.Module) -> list[str]:
    return [k for k, v in vars(model).items() if hasattr(v, "shape") and jnp.ndim(v) == 0]
