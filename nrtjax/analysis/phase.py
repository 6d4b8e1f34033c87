"""Instantaneous phase and frequency."""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact


def instantaneous_phase(x: Inexact[ArrayLike, "*batch time"]) -> Float[Array, "*batch time"]:
    """The phase of a signal: the angle of a complex state, or of a real signal's
    analytic signal (Hilbert transform, computed with SciPy on the host)."""
    x = jnp.asarray(x)
    if jnp.iscomplexobj(x):
        return jnp.angle(x)
    import scipy.signal  # here, not at import: `import nrtjax` stays light

    analytic = scipy.signal.hilbert(np.asarray(x), axis=-1)
    return jnp.asarray(np.angle(analytic), dtype=x.dtype)


def instantaneous_frequency(
    phase: Float[ArrayLike, "*batch time"], dt: float
) -> Float[Array, "*batch time"]:
    """Frequency in Hz: the derivative of the unwrapped phase over $2\\pi$ (central
    differences inside, one-sided at the ends; same length as `phase`)."""
    unwrapped = jnp.unwrap(jnp.asarray(phase), axis=-1)
    return jnp.gradient(unwrapped, dt, axis=-1) / (2 * jnp.pi)
