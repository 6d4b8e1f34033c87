"""Type aliases shared across nrtjax."""

from typing import Any, TypeAlias

from jaxtyping import Array, ArrayLike, Float, Inexact, PyTree

Real: TypeAlias = float | int
RealScalarLike: TypeAlias = float | int | Float[ArrayLike, ""]
Args: TypeAlias = Any
Y: TypeAlias = PyTree[Inexact[Array, "..."]]
