"""The Lorenz system, used as the melodist of the neural duet."""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._custom_types import Args, RealScalarLike
from .._dtypes import as_float
from ._base import AbstractModel


class Lorenz(AbstractModel):
    """The Lorenz (1963) system $x' = \\sigma(y-x)$, $y' = x(\\rho - z) - y$, $z' = xy - \\beta z$.

    Autonomous: the input Signal, if any, is ignored (pass `nrt.silence` to
    [`nrtjax.simulate`][]). For $\\rho < 24.74$ (with $\\sigma = 10$, $\\beta = 8/3$) it
    settles on $C_\\pm = (\\pm\\sqrt{\\beta(\\rho-1)}, \\pm\\sqrt{\\beta(\\rho-1)}, \\rho-1)$;
    at $\\rho = 28$ it is chaotic.

    **References:**

    Lorenz, E. N. (1963). Deterministic nonperiodic flow. J. Atmos. Sci. 20, 130-141.
    """

    sigma: Float[Array, ""]
    rho: Float[Array, ""]
    beta: Float[Array, ""]

    def __init__(self, sigma: ArrayLike = 10.0, rho: ArrayLike = 28.0, beta: ArrayLike = 8 / 3):
        """**Arguments:** `sigma`, `rho`, `beta`: the classical parameters."""
        self.sigma = as_float(sigma)
        self.rho = as_float(rho, self.sigma)
        self.beta = as_float(beta, self.sigma)

    def __call__(self, t: RealScalarLike, y: Float[Array, "3"], args: Args) -> Float[Array, "3"]:
        del t, args
        x, v, z = y[0], y[1], y[2]
        return jnp.stack([self.sigma * (v - x), x * (self.rho - z) - v, x * v - self.beta * z])

    def initial_state(self) -> Float[Array, "3"]:
        """$(1, 1, 1)$."""
        return jnp.ones(3, dtype=self.sigma.dtype)
