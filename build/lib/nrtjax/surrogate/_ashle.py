"""ASHLE with an all-complex state, so that Diffrax's Runge-Kutta solvers accept it.

Diffrax builds one Butcher tableau in the result dtype of *all* state leaves; with
ASHLE's mixed state (complex `d`, `z`, real `f_d`, `f`) that dtype is complex and the
stage update of the real leaves fails (`buffer.at[i].set(value)` dtype error). Carrying
the two frequencies as complex numbers with zero imaginary part keeps every stage exact
(their derivatives are real, so the imaginary part stays 0) and leaves ASHLE unchanged.
"""

import jax.numpy as jnp

from .._custom_types import Args, RealScalarLike
from .._dtypes import to_complex
from ..models import ASHLE, ASHLEState
from ..models._base import AbstractModel


class ComplexStateASHLE(AbstractModel):
    """[`nrtjax.ASHLE`][] on the state `ASHLEState(d, f_d + 0j, z, f + 0j)`."""

    model: ASHLE

    def __call__(self, t: RealScalarLike, y: ASHLEState, args: Args) -> ASHLEState:
        d, f_d, z, f = y
        out = self.model(t, ASHLEState(d, jnp.real(f_d), z, jnp.real(f)), args)
        return ASHLEState(out.d, to_complex(out.f_d, d.dtype), out.z, to_complex(out.f, z.dtype))

    def initial_state(self) -> ASHLEState:
        s = self.model.initial_state()
        return ASHLEState(s.d, to_complex(s.f_d, s.d.dtype), s.z, to_complex(s.f, s.z.dtype))


def real_state(y: ASHLEState) -> ASHLEState:
    """Back to ASHLE's own state structure (real frequencies)."""
    return ASHLEState(y.d, jnp.real(y.f_d), y.z, jnp.real(y.f))
