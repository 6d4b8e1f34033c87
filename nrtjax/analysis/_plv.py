"""Phase-locking value."""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def plv(
    phase_a: Float[ArrayLike, "*batch time"],
    phase_b: Float[ArrayLike, "*batch time"],
    n: int = 1,
    m: int = 1,
) -> Float[Array, "*batch"]:
    """Phase-locking value $|\\langle e^{i(n\\phi_a - m\\phi_b)}\\rangle_t|$ over the last axis.

    1 for identical phases or a constant lag; about $1/\\sqrt{T}$ for independent ones.

    **Arguments:**

    - `phase_a`, `phase_b`: phases in radians, time on the last axis, broadcast over
        leading (batch) axes.
    - `n`, `m`: the $n{:}m$ locking ratio (default 1:1).
    """
    phase_a = jnp.asarray(phase_a)
    phase_b = jnp.asarray(phase_b)
    if phase_a.shape[-1:] != phase_b.shape[-1:]:
        raise ValueError(f"Phases differ in length: {phase_a.shape} vs {phase_b.shape}.")
    dphi = n * phase_a - m * phase_b
    return jnp.hypot(jnp.mean(jnp.cos(dphi), axis=-1), jnp.mean(jnp.sin(dphi), axis=-1))
