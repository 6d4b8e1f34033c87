"""The one way from a JAX PRNG key to a NumPy `Generator`, for the parts generated on the
host (songs, drum voices, the EEG twin, video stimuli), so that JAX keys stay the one
source of randomness."""

import numpy as np


def as_generator(key, *, what: str = "This function") -> np.random.Generator:
    """A NumPy `Generator` from a JAX PRNG key, an int seed or a `Generator` (returned as is).

    A JAX key (typed, or legacy raw `uint32` data) seeds NumPy's `SeedSequence` with its
    raw key data, so equal keys give equal generators. **Raises:** `TypeError` for `None`
    (naming `what` needs the key) or anything else.
    """
    if isinstance(key, np.random.Generator):
        return key
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return np.random.default_rng(int(key))
    if key is None:
        raise TypeError(f"{what} is random: pass key= (a JAX PRNG key, an int seed or a numpy "
                        "Generator) to make it reproducible.")
    import jax
    import jax.numpy as jnp

    if isinstance(key, jax.Array):
        data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        return np.random.default_rng(np.asarray(data, dtype=np.uint32).reshape(-1).tolist())
    raise TypeError("key must be a JAX PRNG key, an int or a numpy Generator, got "
                    f"{type(key).__name__}.")
