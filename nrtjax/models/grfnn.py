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
from .._solvers import scale as real_scale
from ._base import AbstractModel, is_static_zero, read_input

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


def _concrete_float(x, like=None):
    """`as_float(x, like)`, kept concrete for a Python number or NumPy array even while an
    outer `jit` is traced (which would otherwise stage the conversion), so a parameter
    written as `0.0` stays a known zero (`is_static_zero`) for the vector field."""
    if isinstance(x, jax.core.Tracer):
        return as_float(x, like)
    with jax.ensure_compile_time_eval():
        return as_float(x, like)


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
    static_zero_fields: ClassVar[tuple[str, ...]] = (
        "alpha", "beta1", "beta2", "delta1", "delta2", "eps")

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
        self.freqs = jnp.atleast_1d(_concrete_float(freqs))
        like = self.freqs
        self.alpha = _concrete_float(alpha, like)
        self.beta1 = _concrete_float(beta1, like)
        self.beta2 = _concrete_float(beta2, like)
        self.delta1 = _concrete_float(delta1, like)
        self.delta2 = _concrete_float(delta2, like)
        self.eps = _concrete_float(eps, like)
        self.weight = _concrete_float(weight, like)
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
        if self.input == "linear" or is_static_zero(self.eps):  # with eps = 0, A = 1, P(x) = x
            drive = jnp.broadcast_to(x, z.shape)
        elif self.input == "active":
            drive = x * coupling_a(z, sqrt_eps)
        elif self.input == "all2freq":
            drive = coupling_p(x, sqrt_eps) * coupling_a(z, sqrt_eps)
        else:
            se = to_complex(sqrt_eps, z.dtype)
            drive = x / ((1 - se * x) * (1 - se * jnp.conj(x))) * coupling_a(z, sqrt_eps)
        # A real gain times a complex drive, componentwise (`nrt.RK4`'s `scale`).
        return real_scale((self.scale * self.weight).astype(z.real.dtype), drive)

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
    """The canonical intrinsic dynamics, shared by layers and (with other names) Hebbian C.

    A parameter known to be zero when the computation is traced (`is_static_zero`: a
    Python number, or an array that is not traced) drops its term, so a run with the
    common `beta2 = delta2 = 0` or `eps = 0` does no division and no guard per stage.
    Dropping `x + 0 * y` leaves every finite result bit-identical."""
    r2 = jnp.real(z * jnp.conj(z))
    dtype = r2.dtype

    def plus(a, b):
        return a if b is None else (b if a is None else a + b)

    def times(p, r):
        return None if is_static_zero(p) else p * r

    real = plus(None if is_static_zero(alpha) else alpha, times(beta1, r2))
    real = jnp.zeros_like(r2) if real is None else scale * real
    imag = plus(2 * jnp.pi * freqs, None if is_static_zero(delta1) else scale * delta1 * r2)
    cubic = jax.lax.complex(jnp.broadcast_to(real, r2.shape).astype(dtype),
                            jnp.broadcast_to(imag, r2.shape).astype(dtype))
    if is_static_zero(eps) or (is_static_zero(beta2) and is_static_zero(delta2)):
        return z * cubic
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


def guard_domain(dz: Complex[Array, "..."], z: Complex[Array, "..."], eps: ArrayLike) -> Complex[Array, "..."]:
    """NaN where $\\varepsilon|z|^2 \\ge 1$: past that the model is undefined (nothing to
    guard when `eps` is known to be zero: a finite state never reaches it)."""
    if is_static_zero(eps):
        return dz
    r2 = jnp.real(z * jnp.conj(z))
    return jnp.where(eps * r2 < 1, dz, jnp.nan)
