"""The canonical gradient-frequency neural network (one layer)."""

import functools
from typing import ClassVar

import equinox as eqx
import jax
from jax.custom_derivatives import SymbolicZero
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float

from .._custom_types import Args, RealScalarLike
from .._dtypes import as_float, complex_dtype, to_complex
from ._base import AbstractModel, read_input

INPUT_TYPES = ("linear", "active", "allfreq", "all2freq")
SPACINGS = ("log", "lin")


def log_freqs(fmin: float, fmax: float, n: int) -> np.ndarray:
    """`n` log-spaced frequencies from `fmin` to `fmax` Hz (the Toolbox's 'log' grid)."""
    if not (0 < fmin < fmax) or n < 2:
        raise ValueError(f"Need 0 < fmin < fmax and n >= 2, got fmin={fmin}, fmax={fmax}, n={n}.")
    return np.geomspace(fmin, fmax, n)


def lin_freqs(fmin: float, fmax: float, n: int) -> np.ndarray:
    """`n` linearly spaced frequencies from `fmin` to `fmax` Hz (the Toolbox's 'lin' grid)."""
    if not (0 <= fmin < fmax) or n < 2:
        raise ValueError(f"Need 0 <= fmin < fmax and n >= 2, got fmin={fmin}, fmax={fmax}, n={n}.")
    return np.linspace(fmin, fmax, n)


def coupling_a(z: Complex[Array, "*n"], sqrt_eps: Array) -> Complex[Array, "*n"]:
    """$A(z) = 1 / (1 - \\sqrt\\varepsilon \\bar z)$, the passive resonant nonlinearity."""
    return 1 / (1 - to_complex(sqrt_eps, z.dtype) * jnp.conj(z))


def coupling_p(x: Complex[Array, "*n"], sqrt_eps: Array) -> Complex[Array, "..."]:
    """$P(x) = x / (1 - \\sqrt\\varepsilon x)$, the all-harmonics input nonlinearity."""
    return x / (1 - to_complex(sqrt_eps, x.dtype) * x)


class GrFNN(AbstractModel):
    """One layer of the canonical oscillator model (Large, Almonte & Velasco 2010).

    $$\\dot z = z\\left(a + b_1|z|^2 + \\frac{\\varepsilon b_2 |z|^4}{1-\\varepsilon |z|^2}\\right)
    + s\\,w\\,I(x, z)$$

    with $a = \\alpha s + i 2\\pi f$, $b_k = (\\beta_k + i\\delta_k) s$ and the frequency
    scale $s = f$ on a log grid (the Toolbox's `'log'`) or $s = 1$ on a linear grid.
    The input term $I$ is, with $A(z) = 1/(1-\\sqrt\\varepsilon \\bar z)$ and
    $P(x) = x/(1-\\sqrt\\varepsilon x)$: `linear` $x$; `active` $x A(z)$;
    `all2freq` $P(x) A(z)$; `allfreq` $x A(z) / ((1-\\sqrt\\varepsilon x)(1-\\sqrt\\varepsilon\\bar x))$.

    The state must keep $\\varepsilon |z|^2 < 1$; a state that reaches it makes the
    vector field NaN, which [`nrtjax.simulate`][] reports as a diverging integration.

    **References:**

    Large, E. W., Almonte, F. V. & Velasco, M. J. (2010). A canonical model for
    gradient frequency neural networks. Physica D 239(12), 905-911.

    Kim, J. C. & Large, E. W. (2015). Signal processing in periodically forced gradient
    frequency neural networks. Front. Comput. Neurosci. 9, 152.
    """

    elementwise: ClassVar[bool] = True

    freqs: Float[Array, " n"]
    alpha: Float[Array, ""]
    beta1: Float[Array, ""]
    beta2: Float[Array, ""]
    delta1: Float[Array, ""]
    delta2: Float[Array, ""]
    eps: Float[Array, ""]
    weight: Float[Array, ""]
    input: str = eqx.field(static=True)
    spacing: str = eqx.field(static=True)

    def __init__(
        self,
        freqs: ArrayLike,
        alpha: ArrayLike = 0.0,
        beta1: ArrayLike = -1.0,
        beta2: ArrayLike = -1.0,
        delta1: ArrayLike = 0.0,
        delta2: ArrayLike = 0.0,
        eps: ArrayLike = 1.0,
        input: str = "linear",
        *,
        weight: ArrayLike = 1.0,
        spacing: str = "log",
    ):
        """**Arguments:**

        - `freqs`: natural frequencies in Hz, shape `(n,)` (see `log_freqs`, `lin_freqs`).
        - `alpha`, `beta1`, `beta2`, `delta1`, `delta2`: the canonical parameters
            (scalars, or arrays broadcastable to `(n,)`), frequency-scaled as above.
        - `eps`: $\\varepsilon \\in [0, 1]$, not frequency-scaled.
        - `input`: `"linear"`, `"active"`, `"allfreq"` or `"all2freq"`.
        - `weight`: strength $w$ of the external input (frequency-scaled).
        - `spacing`: `"log"` (scale $s = f$) or `"lin"` (scale $s = 1$).
        """
        self.freqs = jnp.atleast_1d(as_float(freqs))
        like = self.freqs
        self.alpha = as_float(alpha, like)
        self.beta1 = as_float(beta1, like)
        self.beta2 = as_float(beta2, like)
        self.delta1 = as_float(delta1, like)
        self.delta2 = as_float(delta2, like)
        self.eps = as_float(eps, like)
        self.weight = as_float(weight, like)
        self.input = input
        self.spacing = spacing

    def __check_init__(self):
        if self.input not in INPUT_TYPES:
            raise ValueError(f"GrFNN input must be one of {INPUT_TYPES}, got {self.input!r}.")
        if self.spacing not in SPACINGS:
            raise ValueError(f"GrFNN spacing must be one of {SPACINGS}, got {self.spacing!r}.")
        if self.freqs.ndim != 1:
            raise ValueError(f"GrFNN freqs must be a vector, got shape {self.freqs.shape}.")
        if not isinstance(self.eps, jax.core.Tracer) and not 0 <= float(self.eps) <= 1:
            raise ValueError(f"GrFNN eps must lie in [0, 1], got {float(self.eps)}.")

    @property
    def scale(self) -> Float[Array, " n"]:
        """The frequency scale $s$: $f$ on a log grid, 1 on a linear grid."""
        return self.freqs if self.spacing == "log" else jnp.ones_like(self.freqs)

    def intrinsic(self, z: Complex[Array, " n"]) -> Complex[Array, " n"]:
        """The uncoupled part $z(a + b_1|z|^2 + \\varepsilon b_2|z|^4/(1-\\varepsilon|z|^2))$."""
        return intrinsic(z, self.freqs, self.scale, self.alpha, self.beta1, self.beta2,
                         self.delta1, self.delta2, self.eps)

    def stimulus_term(self, x: Complex[Array, "..."], z: Complex[Array, " n"]) -> Complex[Array, " n"]:
        """$s\\,w\\,I(x, z)$ for the layer's input type."""
        sqrt_eps = jnp.sqrt(self.eps)
        if self.input == "linear":
            drive = jnp.broadcast_to(x, z.shape)
        elif self.input == "active":
            drive = x * coupling_a(z, sqrt_eps)
        elif self.input == "all2freq":
            drive = coupling_p(x, sqrt_eps) * coupling_a(z, sqrt_eps)
        else:
            se = to_complex(sqrt_eps, z.dtype)
            drive = x / ((1 - se * x) * (1 - se * jnp.conj(x))) * coupling_a(z, sqrt_eps)
        return to_complex(self.scale * self.weight, z.dtype) * drive

    def __call__(self, t: RealScalarLike, y: Complex[Array, " n"], args: Args) -> Complex[Array, " n"]:
        x = read_input(args, t, y)
        if x.ndim != 0:
            raise ValueError(
                f"GrFNN takes a single-channel input, got a Signal with channel shape {x.shape}."
            )
        return guard_domain(self.intrinsic(y) + self.stimulus_term(x, y), y, self.eps)

    def initial_state(self) -> Complex[Array, " n"]:
        """$z_0 = 0.01$ for every oscillator."""
        return jnp.full(self.freqs.shape, 0.01, dtype=complex_dtype(self.freqs.dtype))


def intrinsic(z, freqs, scale, alpha, beta1, beta2, delta1, delta2, eps):
    """The canonical intrinsic dynamics, shared by layers and (with other names) Hebbian C."""
    r2 = jnp.real(z * jnp.conj(z))
    dtype = r2.dtype
    cubic = jax.lax.complex((scale * (alpha + beta1 * r2)).astype(dtype),
                            (2 * jnp.pi * freqs + scale * delta1 * r2).astype(dtype))
    # One division for both b2 terms, used once (as a complex number): XLA:CPU keeps a
    # division that feeds two consumers out of their fused kernel, which would split an
    # RK4 step into several kernels.
    b2 = jax.lax.complex((scale * beta2).astype(dtype), (scale * delta2).astype(dtype))
    return z * (cubic + b2 * _quintic(r2, jnp.asarray(eps, dtype)).astype(b2.dtype))


@jax.custom_jvp
def _quintic(r2, eps):
    """$\\varepsilon r^4 / (1 - \\varepsilon r^2)$ as a function of $r^2$."""
    return eps * r2 * r2 / (1 - eps * r2)


@functools.partial(_quintic.defjvp, symbolic_zeros=True)
def _quintic_jvp(primals, tangents):
    # One division per partial derivative, each used once, instead of the quotient rule's
    # reuse of the primal quotient: XLA:CPU keeps a division with several consumers out of
    # their fused kernels, and each such division is one more kernel per adjoint stage.
    r2, eps = primals
    dr2, deps = tangents
    den = 1 - eps * r2
    terms = []
    if not isinstance(dr2, SymbolicZero):
        terms.append(eps * r2 * (2 - eps * r2) / (den * den) * dr2)
    if not isinstance(deps, SymbolicZero):
        terms.append(r2 * r2 / (den * den) * deps)
    out = _quintic(r2, eps)
    if not terms:
        return out, jnp.zeros_like(out)
    return out, terms[0] if len(terms) == 1 else terms[0] + terms[1]


def guard_domain(dz: Complex[Array, "..."], z: Complex[Array, "..."], eps: Array) -> Complex[Array, "..."]:
    """NaN where $\\varepsilon|z|^2 \\ge 1$: past that the model is undefined."""
    r2 = jnp.real(z * jnp.conj(z))
    return jnp.where(eps * r2 < 1, dz, jnp.nan)
