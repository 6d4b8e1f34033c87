"""`sharded_vmap`: a vmapped function whose batch is split over all local devices."""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

from ._compile import filter_jit_tuned


def _batch_size(members: PyTree) -> int:
    sizes = {jnp.shape(leaf)[0] for leaf in jtu.tree_leaves(members)}
    if len(sizes) != 1:
        raise ValueError(f"All swept parameters need the same leading (member) axis, got "
                         f"sizes {sorted(sizes)}; flatten the grid first.")
    (n,) = sizes
    if n < 1:
        raise ValueError("The sweep has no members.")
    return n


def sharded_vmap(
    fn: Callable[[PyTree], PyTree], *, devices: Sequence[jax.Device] | None = None
) -> Callable[[PyTree], PyTree]:
    """Vectorise `fn` over the leading axis of its argument and split that axis over devices.

    The members are laid out along a one-axis device mesh (`jax.sharding`), so one call
    fills one CPU, one GPU or eight: each device integrates its share of the members, and
    the compiled program is the same `jax.vmap(fn)` as on one device. The batch is padded
    to a multiple of the device count by repeating the last member (so padding never
    introduces values `fn` has not been asked about) and the padding is cut off again.
    Calls with the same batch size reuse one compilation.

    **Arguments:**

    - `fn`: a pure function of one member's parameters (a PyTree of scalars or arrays),
        e.g. building a model from traced parameters and calling
        `nrt.simulate(..., throw=False)`.
    - `devices`: the devices to use; default `jax.local_devices()`.

    **Returns:**

    A function taking a PyTree of arrays with a common leading member axis and returning
    `fn`'s outputs stacked along that axis (as sharded `jax.Array`s).

    !!! example

        ```python
        run = nrt.sharded_vmap(lambda p: nrt.simulate(
            nrt.GrFNN(freqs, alpha=p["alpha"]), sig, dt=1 / fs, throw=False).ys[-1])
        final = run({"alpha": jnp.linspace(-1.0, 0.5, 256)})     # (256, n)
        ```
    """
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("sharded_vmap needs at least one device.")
    mesh = Mesh(np.asarray(devices), ("members",))
    sharding = NamedSharding(mesh, PartitionSpec("members"))
    batched = filter_jit_tuned(jax.vmap(fn))

    def call(members: PyTree) -> PyTree:
        n = _batch_size(members)
        pad = (-n) % len(devices)

        def place(leaf):
            leaf = jnp.asarray(leaf)
            if pad:
                leaf = jnp.concatenate([leaf, jnp.repeat(leaf[-1:], pad, axis=0)])
            return jax.device_put(leaf, sharding)

        out = batched(jtu.tree_map(place, members))
        return jtu.tree_map(lambda a: a[:n], out) if pad else out

    return call
