"""The abstract base of every nrtjax model."""

import abc
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Inexact

from .._custom_types import Args, RealScalarLike, Y
from .._signal import Signal


class AbstractModel(eqx.Module):
    """A vector field `(t, y, args) -> dy/dt`, so `diffrax.ODETerm(model)` works on it.

    `args` is the input [`nrtjax.Signal`][] (or `None` for no input).

    A model whose units are uncoupled (each unit's derivative depends only on its own
    state, the shared input and parameters that broadcast over the units, and the field
    is unchanged when every parameter is broadcast to the state's shape) sets the class
    variable `elementwise = True`; [`nrtjax.simulate`][]'s fixed-step RK4 runs then get a
    reverse-mode derivative built from per-unit Jacobians (`nrtjax._fixed_step`).
    """

    elementwise: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(self, t: RealScalarLike, y: Y, args: Args) -> Y:
        """The time derivative of the state `y` at time `t` with input `args`."""

    @abc.abstractmethod
    def initial_state(self) -> Y:
        """The default initial state (documented per model)."""


def read_input(args: Signal | None, t: RealScalarLike, like: Array) -> Inexact[Array, "*channels"]:
    """The input at time `t` as the complex dtype of `like` (zero without a Signal)."""
    if args is None:
        return jnp.zeros((), dtype=like.dtype)
    if not isinstance(args, Signal):
        raise TypeError(f"A model's input must be an nrt.Signal or None, got {type(args).__name__}.")
    return args.evaluate(t).astype(like.dtype)
