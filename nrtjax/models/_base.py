"""The abstract base of every nrtjax model."""

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, Inexact

from .._custom_types import Args, RealScalarLike, Y
from .._signal import HeldInput, Signal


class AbstractModel(eqx.Module):
    """A vector field `(t, y, args) -> dy/dt`, so `diffrax.ODETerm(model)` works on it.

    `args` is the input [`nrtjax.Signal`][] (or `None` for no input). Under a zero-order
    hold ([`nrtjax.simulate`][] with `input_hold="zero"`) each step gets instead the
    step's sample as a `HeldInput`, which reads the same way: `args.evaluate(t)` (or
    `read_input`, which also casts the value to the state's dtype).

    A model whose units are uncoupled (each unit's derivative depends only on its own
    state, the shared input and parameters that broadcast over the units, and the field
    is unchanged when every parameter is broadcast to the state's shape) sets the class
    variable `elementwise = True`; [`nrtjax.simulate`][]'s fixed-step RK4 runs then get a
    reverse-mode derivative built from per-unit Jacobians (`nrtjax._fixed_step`).

    A model that drops the terms of parameters known to be zero at trace time (see
    `is_static_zero`) lists those fields in the class variable `static_zero_fields`;
    [`nrtjax.simulate`][] then passes such a field that holds a concrete zero as the
    Python number `0.0` (`with_static_zeros`), which stays known inside its compiled
    loop, where an array argument would be traced.
    """

    elementwise: ClassVar[bool] = False
    static_zero_fields: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def __call__(self, t: RealScalarLike, y: Y, args: Args) -> Y:
        """The time derivative of the state `y` at time `t` with input `args`."""

    @abc.abstractmethod
    def initial_state(self) -> Y:
        """The default initial state (documented per model)."""


def read_input(args: Signal | HeldInput | None, t: RealScalarLike,
               like: Array) -> Inexact[Array, "*channels"]:
    """The input at time `t` as the complex dtype of `like` (zero without a Signal; the
    held sample under a zero-order hold)."""
    if args is None:
        return jnp.zeros((), dtype=like.dtype)
    if not isinstance(args, (Signal, HeldInput)):
        raise TypeError(f"A model's input must be an nrt.Signal or None, got {type(args).__name__}.")
    return args.evaluate(t).astype(like.dtype)


def is_static_zero(x) -> bool:
    """Whether `x` is the Python number 0: a parameter known to be zero while a computation
    is traced, whose terms the vector field may drop. An array never is (under `jit`,
    `grad` or `vmap` it may be a tracer; [`nrtjax.simulate`][] turns concrete zero
    arrays into Python zeros for its forward pass, `with_static_zeros`)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


def _concrete_zero(x) -> bool:
    if isinstance(x, jax.core.Tracer) or not isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return False
    return np.size(x) <= 1 << 16 and bool(np.all(np.asarray(x) == 0))


def _specialisable(x) -> bool:
    return isinstance(x, AbstractModel) and bool(type(x).static_zero_fields)


def static_zero_names(model) -> tuple[str, ...]:
    """The fields of `model` (itself, not its submodules) listed in its
    `static_zero_fields` that hold concrete (untraced) zero arrays."""
    if not _specialisable(model):
        return ()
    return tuple(n for n in type(model).static_zero_fields if _concrete_zero(getattr(model, n)))


def set_static_zeros(model, names: tuple[str, ...]):
    """`model` with the fields `names` replaced by the Python number `0.0`."""
    if not names:
        return model
    return eqx.tree_at(lambda m: [getattr(m, n) for n in names], model, [0.0] * len(names))


def with_static_zeros(tree):
    """`tree` with every model's `static_zero_fields` that hold a concrete zero array
    replaced by the Python number `0.0`: a filtered `jit` keeps a Python number as a
    static value, so the model's code still sees a known zero inside it. Only concrete
    values are replaced, so nothing that is differentiated or batched is touched."""
    return jtu.tree_map(lambda m: set_static_zeros(m, static_zero_names(m)) if _specialisable(m) else m,
                        tree, is_leaf=_specialisable)
