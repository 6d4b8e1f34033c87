"""ASHLE: Adaptive Synchronization with Hebbian Learning and Elasticity."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Complex, Float

from .._custom_types import Args, RealScalarLike
from .._dtypes import as_float, complex_dtype, default_float, to_complex
from ._base import AbstractModel, read_input


class ASHLEState(NamedTuple):
    """ASHLE's state: sensory oscillator `d`, its frequency `f_d` (Hz), motor oscillator
    `z` and its frequency `f` (Hz). Each leaf gains a leading time axis in a Trajectory."""

    d: Complex[Array, "*t"]
    f_d: Float[Array, "*t"]
    z: Complex[Array, "*t"]
    f: Float[Array, "*t"]


def unit_phasor(z: Complex[Array, "*n"]) -> tuple[Complex[Array, "*n"], Float[Array, "*n"]]:
    """$z/|z|$ and $|z|$, guarded at $z = 0$ (returns 0 there) without NaN gradients."""
    r = jnp.abs(z)
    safe = jnp.where(r > 0, r, 1.0)
    return jnp.where(r > 0, z / to_complex(safe, z.dtype), 0), r


class ASHLE(AbstractModel):
    """ASHLE (Roman, Roman, Kim & Large 2023): a sensory oscillator $d$ that tracks the
    stimulus and a motor oscillator $z$ that learns its frequency.

    $$d' = f_d[d(a + i2\\pi + b|d|^2) + F_d F]$$
    $$f_d' = f_d[-\\lambda_1 \\mathrm{Re}(i F_d F \\bar d/|d|) - \\gamma(e^{(f_d-f)/f} - 1)]$$
    $$z' = f[z(a + i2\\pi + b|z|^2) + e^{i\\angle d}]$$
    $$f' = f[-\\lambda_1 \\mathrm{Re}(i e^{i\\angle d}\\bar z/|z|) - \\lambda_2(e^{(f-f_0)/f_0} - 1)]$$

    The divisions by $|d|$ and $|z|$ are guarded at 0 (where the term is taken as 0)
    and unchanged elsewhere. The reference setting is the default: $a = 1$, $b = -1$,
    $\\lambda_1 = 4$, $\\lambda_2 = 2$, $\\gamma = 0.02$, $F_d = 1$, integrated with forward
    Euler at 500 Hz in the paper.

    **References:**

    Roman, I. R., Roman, A. S., Kim, J. C. & Large, E. W. (2023). Hebbian learning with
    elasticity explains how the spontaneous motor tempo affects music performance
    synchronization. PLOS Comput. Biol. 19(6), e1011154.
    """

    f0: Float[Array, ""]
    lambda1: Float[Array, ""]
    lambda2: Float[Array, ""]
    gamma: Float[Array, ""]
    a: Float[Array, ""]
    b: Float[Array, ""]
    forcing: Float[Array, ""]

    def __init__(
        self,
        f0: ArrayLike = 2.0,
        lambda1: ArrayLike = 4.0,
        lambda2: ArrayLike = 2.0,
        gamma: ArrayLike = 0.02,
        a: ArrayLike = 1.0,
        b: ArrayLike = -1.0,
        forcing: ArrayLike = 1.0,
    ):
        """**Arguments:**

        - `f0`: spontaneous motor rate in Hz (1000 / SMT in ms).
        - `lambda1`: frequency-learning rate $\\lambda_1$ (Hebbian).
        - `lambda2`: elasticity $\\lambda_2$ (pull of $f$ back to $f_0$).
        - `gamma`: pull of the sensory frequency $f_d$ towards $f$.
        - `a`, `b`: linear and cubic coefficients of both oscillators.
        - `forcing`: stimulus strength $F_d$.
        """
        self.f0 = as_float(f0)
        like = self.f0
        self.lambda1 = as_float(lambda1, like)
        self.lambda2 = as_float(lambda2, like)
        self.gamma = as_float(gamma, like)
        self.a = as_float(a, like)
        self.b = as_float(b, like)
        self.forcing = as_float(forcing, like)

    def _oscillator(self, w: Complex[Array, ""]) -> Complex[Array, ""]:
        r2 = jnp.real(w * jnp.conj(w))
        return w * jax.lax.complex(self.a + self.b * r2, 2 * jnp.pi * jnp.ones_like(r2))

    def __call__(self, t: RealScalarLike, y: ASHLEState, args: Args) -> ASHLEState:
        d, f_d, z, f = y
        x = read_input(args, t, d)
        if x.ndim != 0:
            raise ValueError(f"ASHLE takes a single-channel input, got channel shape {x.shape}.")
        drive = to_complex(self.forcing, d.dtype) * x
        ud, _ = unit_phasor(d)
        uz, _ = unit_phasor(z)
        dd = to_complex(f_d, d.dtype) * (self._oscillator(d) + drive)
        dfd = f_d * (-self.lambda1 * jnp.real(1j * drive * jnp.conj(ud))
                     - self.gamma * (jnp.exp((f_d - f) / f) - 1))
        dz = to_complex(f, z.dtype) * (self._oscillator(z) + ud)
        df = f * (-self.lambda1 * jnp.real(1j * ud * jnp.conj(uz))
                  - self.lambda2 * (jnp.exp((f - self.f0) / self.f0) - 1))
        return ASHLEState(dd, dfd, dz, df)

    def initial_state(self) -> ASHLEState:
        """The reference state: $d_0 = z_0 = 0.01$, $f_{d,0} = f(0) = f_0$."""
        dtype = self.f0.dtype if jnp.issubdtype(self.f0.dtype, jnp.floating) else default_float()
        c = jnp.asarray(0.01, dtype=complex_dtype(dtype))
        return ASHLEState(c, self.f0, c, self.f0)
