"""The Hopf normal-form oscillator."""

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float

from .._custom_types import Args, RealScalarLike
from .._dtypes import as_float, complex_dtype, to_complex
from ._base import AbstractModel, read_input


class Hopf(AbstractModel):
    """The Hopf normal form $\\dot z = z(\\alpha + i 2\\pi f + \\beta |z|^2) + x(t)$.

    For $\\alpha > 0$, $\\beta < 0$ and no input, $|z| \\to \\sqrt{-\\alpha/\\beta}$ and
    $z$ turns at $f$ Hz. `freq`, `alpha` and `beta` broadcast together, so a vector of
    frequencies is a bank of uncoupled oscillators sharing one input.

    **References:**

    Kuznetsov, Y. A. (2004). Elements of Applied Bifurcation Theory, 3rd ed., ch. 3.
    """

    elementwise: ClassVar[bool] = True

    freq: Float[Array, "*n"]
    alpha: Float[Array, "*n"]
    beta: Float[Array, "*n"]

    def __init__(self, freq: ArrayLike, alpha: ArrayLike, beta: ArrayLike = -1.0):
        """**Arguments:**

        - `freq`: natural frequency $f$ in Hz (scalar or vector).
        - `alpha`: linear damping/excitation $\\alpha$ (>0 spontaneous oscillation).
        - `beta`: cubic saturation $\\beta$ (<0 for a stable limit cycle).
        """
        self.freq = as_float(freq)
        self.alpha = as_float(alpha, like=self.freq)
        self.beta = as_float(beta, like=self.freq)

    def __call__(self, t: RealScalarLike, y: Complex[Array, "*n"], args: Args) -> Complex[Array, "*n"]:
        x = read_input(args, t, y)
        r2 = jnp.real(y * jnp.conj(y))
        lin = jnp.asarray(self.alpha + self.beta * r2, dtype=y.real.dtype)
        rate = jnp.broadcast_to(to_complex(lin) + 2j * jnp.pi * to_complex(self.freq), y.shape)
        return y * rate + x

    def initial_state(self) -> Complex[Array, "*n"]:
        """$z_0 = 0.01$ for every oscillator (a small kick off the unstable origin)."""
        shape = jnp.broadcast_shapes(self.freq.shape, self.alpha.shape, self.beta.shape)
        return jnp.full(shape, 0.01, dtype=complex_dtype(self.freq.dtype))
