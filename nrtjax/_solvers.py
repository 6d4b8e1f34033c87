"""Classical fourth-order Runge-Kutta as a Diffrax solver, and the zero-order hold of
the input as a solver wrapper."""

from collections.abc import Callable
from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
import jax.tree_util as jtu

from ._signal import HeldInput, Signal

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


class ZeroHold(diffrax.AbstractWrappedSolver):
    """`solver` with its input held over each step (a zero-order hold).

    Over the step $[t_k, t_{k+1}]$ every stage reads the input sample $x_k$ at $t_k$
    (passed to the model as a `HeldInput` in place of the [`nrtjax.Signal`][]), so a step
    never reads the next sample: what a real-time engine that receives its input block by
    block can do. The steps must lie on the signal's sample grid ([`nrtjax.simulate`][]
    with `input_hold="zero"` checks that). The input jumps at every step boundary, so each
    step is told so (`made_jump=True`): a FSAL solver (`diffrax.Tsit5`) then evaluates its
    first stage afresh instead of reusing the previous step's last one.
    """

    solver: diffrax.AbstractSolver

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    @property
    def term_compatible_contr_kwargs(self):
        return self.solver.term_compatible_contr_kwargs

    def order(self, terms):
        return self.solver.order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, _held(args, t0))

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        return self.solver.step(terms, t0, t1, y0, _held(args, t0), solver_state, True)

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, _held(args, t0))


def _held(signal: Signal, t) -> HeldInput:
    """The sample of the uniformly sampled `signal` at the grid time `t`, held."""
    k = jnp.round((t - signal.t0) / signal.dt).astype(jnp.int32)
    return HeldInput(signal.xs[jnp.clip(k, 0, signal.xs.shape[0] - 1)])
