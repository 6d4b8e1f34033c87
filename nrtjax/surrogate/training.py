"""The surrogate's training step: crops, loss and one optimizer update, jitted as one.

The train state, checkpoints, resume and NaN stop are shared with the other networks in
`nrtjax._train` (re-exported here); the optimiser is [`nrtjax.make_optimizer`][].
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
from jaxtyping import PRNGKeyArray

from .._train import (  # noqa: F401  (the surrogate's public training API)
    NonFiniteLossError as NonFiniteLossError,
    TrainLog as TrainLog,
    TrainState as TrainState,
    init_state as init_state,
    load_state as load_state,
    save_state as save_state,
    train as train,
)
from .losses import LossWeights, total_loss
from .tcn import Surrogate


def sample_batch(data: dict, *, key: PRNGKeyArray, batch_size: int, crop: int,
                 warm: int) -> dict:
    """Random crops of `crop` steps (a fifth of them at a song's start, so that the
    start-up is learnt too). The loss mask drops the first `warm` steps of a crop (their
    history is cut off) unless the crop starts at the beginning of the song."""
    n, t = data["phase"].shape
    k1, k2, k3 = jr.split(key, 3)
    idx = jr.randint(k1, (batch_size,), 0, n)
    start = jr.randint(k2, (batch_size,), 0, t - crop + 1)
    at_start = jr.uniform(k3, (batch_size,)) < 0.2
    start = jnp.where(at_start, 0, start)
    def take(a, i, s):
        return jax.lax.dynamic_slice_in_dim(a[i], s, crop, axis=-1)
    def crop_all(a):
        return jax.vmap(take, in_axes=(None, 0, 0))(a, idx, start)
    x = crop_all(data["x"])
    steps = jnp.arange(crop)[None, :]
    mask = ((steps >= warm) | (start[:, None] == 0)).astype(x.dtype)
    return {"x": x, "phase": crop_all(data["phase"]), "freq": crop_all(data["freq"]),
            "amp": crop_all(data["amp"]), "mask": mask}


def apply_update(model: Surrogate, opt_state, batch: dict, optimizer: optax.GradientTransformation,
                 weights: LossWeights, *, key: PRNGKeyArray | None):
    """Loss, gradient and one optimizer update on `batch` (pure; jit it or call it
    inside a jitted step). Returns `(model, opt_state, loss, parts)`; `loss` is the
    value before the update."""
    def loss_fn(m):
        return total_loss(m, batch, weights, key=key, inference=key is None)
    (loss, parts), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model)
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state, loss, parts


def make_step_fn(optimizer: optax.GradientTransformation, weights: LossWeights, *,
                 batch_size: int, crop: int, warm: int) -> Callable:
    """The one jitted training step `(state, data) -> (state, loss, parts)` on crops from
    [`sample_batch`][]."""

    @eqx.filter_jit
    def step(state: TrainState, data: dict):
        key, kb, kd = jr.split(state.key, 3)
        batch = sample_batch(data, key=kb, batch_size=batch_size, crop=crop, warm=warm)
        model, opt_state, loss, parts = apply_update(state.model, state.opt_state, batch,
                                                     optimizer, weights, key=kd)
        return TrainState(model, opt_state, state.step + 1, jr.key_data(key)), loss, parts

    return step
