"""Dtype helpers: follow the input's precision, never hard-code one."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact


def default_float() -> np.dtype:
    """float64 when x64 is enabled, float32 otherwise (as `equinox`'s default)."""
    return jnp.dtype(jnp.float64) if jax.config.read("jax_enable_x64") else jnp.dtype(jnp.float32)


def complex_dtype(dtype) -> np.dtype:
    """The complex dtype with the same precision as a real (or complex) `dtype`."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return dtype
    return jnp.dtype(jnp.complex128) if dtype == jnp.float64 else jnp.dtype(jnp.complex64)


def real_dtype(dtype) -> np.dtype:
    """The real dtype with the same precision as `dtype`."""
    return jnp.finfo(jnp.dtype(dtype)).dtype


def as_float(x: ArrayLike, like: ArrayLike | None = None) -> Inexact[Array, "..."]:
    """`x` as a floating array: the real dtype of `like`, or its own, or the default."""
    if like is not None:
        return jnp.asarray(x, dtype=real_dtype(jnp.result_type(like)))
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    return x.astype(default_float())


def to_complex(x: ArrayLike, dtype=None) -> Inexact[Array, "..."]:
    """Cast a real array to complex explicitly (strict dtype promotion allows no implicit cast)."""
    x = jnp.asarray(x)
    return x.astype(complex_dtype(dtype if dtype is not None else x.dtype))
