"""The abstract base of every nrtjax model."""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Inexact

from .._custom_types import Args, RealScalarLike, Y
from .._signal import Signal


class AbstractModel(eqx.Module):
    """A vector field `(t, y, args) -> dy/dt`, so `diffrax.ODETerm(model)` works on it.

    `args` is the input [`nrtjax.Signal`][] (or `None` for no input).
    """

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
