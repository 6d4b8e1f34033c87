"""Classical fourth-order Runge-Kutta as a Diffrax solver."""

from collections.abc import Callable
from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
import jax.tree_util as jtu

_SolverState = None


def scale(a, x):
    """`a * x` for a real scalar `a`: on a complex `x`, the real and imaginary parts are
    scaled separately. Written as `a * x`, XLA first turns `a` into the complex `(a, 0)` and
    does a full complex product (four multiplications and two additions per element, where
    two multiplications give the same finite result) on every element of every stage."""
    if jnp.iscomplexobj(x) and not jnp.iscomplexobj(a):
        a = jnp.asarray(a, jnp.real(x).dtype)
        return jax.lax.complex(a * jnp.real(x), a * jnp.imag(x))
    return a * x


class RK4(diffrax.AbstractSolver):
    """The classical fourth-order Runge-Kutta method (Kutta 1901), for fixed steps.

    Stages at $t$, $t + h/2$, $t + h/2$, $t + h$ with weights 1/6, 1/3, 1/3, 1/6. With the
    step equal to the input's sample spacing, the two half-step stages read the mean of
    two neighbouring samples from a [`nrtjax.Signal`][]: exactly what the MATLAB GrFNN
    Toolbox's `odeRK4fs.m` does, so nrtjax agrees with it.

    The four stages are written out (no loop over a Butcher tableau), which keeps both
    compilation and each step cheap. Has no error estimate, so it takes no adaptive
    step-size controller; dense output between steps is linear.

    **References:**

    Kutta, W. (1901). Beitrag zur naeherungsweisen Integration totaler
    Differentialgleichungen. Z. Math. Phys. 46, 435-453.
    """

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., diffrax.LocalLinearInterpolation]] = (
        diffrax.LocalLinearInterpolation
    )

    def order(self, terms):
        del terms
        return 4

    def init(self, terms, t0, t1, y0, args) -> _SolverState:
        del terms, t0, t1, y0, args
        return None

    def step(self, terms, t0, t1, y0, args, solver_state: _SolverState, made_jump):
        del solver_state, made_jump
        h = t1 - t0
        th = t0 + 0.5 * h

        def increment(t, y, t_end):
            if type(terms) is diffrax.ODETerm:  # the control is the (real) step length
                return jtu.tree_map(lambda f: scale(t_end - t0, f), terms.vf(t, y, args))
            return terms.vf_prod(t, y, args, terms.contr(t0, t_end))

        def axpy(a, k):
            return jtu.tree_map(lambda y, kk: y + (kk if a == 1 else scale(a, kk)), y0, k)

        k1 = increment(t0, y0, th)
        k2 = increment(th, axpy(1, k1), th)
        k3 = increment(th, axpy(1, k2), th)
        k4 = increment(t1, axpy(2, k3), t1)
        # k1..k3 are increments over h/2, k4 over h: y1 = y0 + (2k1 + 4k2 + 4k3 + k4)/6.
        def combine(y, a, b, c, d):
            total = scale(2, a) + scale(4, b) + scale(4, c) + d
            # XLA turns a complex division by 6 into a product with 1/6 anyway; a real
            # one stays a division.
            return y + (scale(1 / 6, total) if jnp.iscomplexobj(total) else total / 6)

        y1 = jtu.tree_map(combine, y0, k1, k2, k3, k4)
        dense_info = dict(y0=y0, y1=y1)
        return y1, None, dense_info, None, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
