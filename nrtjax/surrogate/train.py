"""Training: optax AdamW with warmup + cosine and clipping, one jitted step, exact resume."""

import dataclasses
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from ..io import atomic_path
from .losses import LossWeights, total_loss
from .tcn import TCN


def make_optimizer(*, lr: float, total_steps: int, warmup_steps: int, weight_decay: float,
                   clip_norm: float) -> optax.GradientTransformation:
    """Gradient clipping, then AdamW on a warmup + cosine-decay schedule.

    **Arguments:** `lr` peak learning rate; `total_steps` schedule length;
    `warmup_steps` linear warmup from 0; `weight_decay` AdamW decay; `clip_norm` global
    gradient-norm clip.
    """
    if warmup_steps > 0:
        schedule = optax.warmup_cosine_decay_schedule(
            lr / warmup_steps, lr, warmup_steps=warmup_steps,
            decay_steps=max(total_steps, warmup_steps + 1), end_value=lr * 0.02)
    else:
        schedule = optax.cosine_decay_schedule(lr, max(total_steps, 1), alpha=0.02)
    return optax.chain(optax.clip_by_global_norm(clip_norm),
                       optax.adamw(schedule, weight_decay=weight_decay))


class TrainState(eqx.Module):
    """Everything a resumed run needs: model, optimizer state, step count and PRNG key
    (stored as raw key data so it serialises)."""

    model: TCN
    opt_state: optax.OptState
    step: Array
    key_data: Array

    @property
    def key(self) -> PRNGKeyArray:
        return jr.wrap_key_data(self.key_data)


def init_state(model: TCN, optimizer: optax.GradientTransformation, *, key: PRNGKeyArray) -> TrainState:
    """A fresh `TrainState`: `optimizer` initialised on `model`'s arrays, step 0, `key`."""
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    return TrainState(model, opt_state, jnp.asarray(0, jnp.int32), jr.key_data(key))


def sample_batch(data: dict, *, key: PRNGKeyArray, batch_size: int, crop: int, warm: int,
                 hard_fraction: float = 0.0, hard_offset: int = 0) -> dict:
    """Random crops of `crop` steps. The loss mask drops the first `warm` steps of a crop
    (their history is cut off) unless the crop starts at the beginning of the song.

    With `hard_fraction > 0`, each crop is, with that probability, the start of a song
    drawn from those flagged in `data["hard"]` (songs,) (e.g. by
    [`slow_lock_songs`][nrtjax.surrogate.slow_lock_songs]); `hard_fraction = 0` draws
    exactly as before the option existed (same keys, same crops). With `hard_offset > 0`
    such a crop starts at a uniform step in `[0, hard_offset]` instead of at 0, so that
    its scored part can cover a late lock (`hard_offset = 0` draws as before it existed).
    """
    n, t = data["phase"].shape
    k1, k2, k3 = jr.split(key, 3)
    idx = jr.randint(k1, (batch_size,), 0, n)
    start = jr.randint(k2, (batch_size,), 0, t - crop + 1)
    at_start = jr.uniform(k3, (batch_size,)) < 0.2  # learn the start-up too
    if hard_fraction > 0:
        if "hard" not in data:
            raise ValueError("hard_fraction > 0 needs data[\"hard\"], one flag per song "
                             "(e.g. nrt.surrogate.slow_lock_songs(dataset, fs=fs)).")
        k4, k5 = jr.split(jr.fold_in(key, 1))
        hard = jnp.asarray(data["hard"], jnp.float32)
        pick = jr.choice(k4, n, (batch_size,), p=hard / jnp.sum(hard))
        use = jr.uniform(k5, (batch_size,)) < hard_fraction
        idx = jnp.where(use, pick, idx)
        if hard_offset > 0:
            if hard_offset > t - crop:
                raise ValueError(f"hard_offset={hard_offset} must lie in [0, {t - crop}] "
                                 f"(song length {t} - crop {crop} steps).")
            late = jr.randint(jr.fold_in(key, 2), (batch_size,), 0, hard_offset + 1)
            start = jnp.where(use, late, start)
            at_start = at_start & ~use
        else:
            at_start = at_start | use
    start = jnp.where(at_start, 0, start)
    take = lambda a, i, s: jax.lax.dynamic_slice_in_dim(a[i], s, crop, axis=-1)
    crop_all = lambda a: jax.vmap(take, in_axes=(None, 0, 0))(a, idx, start)
    x = crop_all(data["x"])
    steps = jnp.arange(crop)[None, :]
    mask = ((steps >= warm) | (start[:, None] == 0)).astype(x.dtype)
    return {"x": x, "phase": crop_all(data["phase"]), "freq": crop_all(data["freq"]),
            "amp": crop_all(data["amp"]), "mask": mask}


def apply_update(model: TCN, opt_state, batch: dict, optimizer: optax.GradientTransformation,
                 weights: LossWeights, *, key: PRNGKeyArray | None):
    """Loss, gradient and one optimizer update on `batch` (pure; jit it or call it
    inside a jitted step). Returns `(model, opt_state, loss, parts)`; `loss` is the
    value before the update."""
    loss_fn = lambda m: total_loss(m, batch, weights, key=key, inference=key is None)
    (loss, parts), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model)
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state, loss, parts


def make_step_fn(optimizer: optax.GradientTransformation, weights: LossWeights, *,
                 batch_size: int, crop: int, warm: int, hard_fraction: float = 0.0,
                 hard_offset: int = 0) -> Callable:
    """The one jitted training step `(state, data) -> (state, loss, parts)`; `hard_fraction`
    and `hard_offset` as in [`sample_batch`][] (then `data` needs its `"hard"` flags)."""
    if not 0 <= hard_fraction <= 1:
        raise ValueError(f"hard_fraction={hard_fraction} must lie in [0, 1].")

    @eqx.filter_jit
    def step(state: TrainState, data: dict):
        key, kb, kd = jr.split(state.key, 3)
        batch = sample_batch(data, key=kb, batch_size=batch_size, crop=crop, warm=warm,
                             hard_fraction=hard_fraction, hard_offset=hard_offset)
        model, opt_state, loss, parts = apply_update(state.model, state.opt_state, batch,
                                                     optimizer, weights, key=kd)
        return TrainState(model, opt_state, state.step + 1, jr.key_data(key)), loss, parts

    return step


def save_state(path: str | Path, state: TrainState) -> Path:
    """Serialise a TrainState with `eqx.tree_serialise_leaves`, atomically."""
    with atomic_path(path) as tmp:
        eqx.tree_serialise_leaves(tmp, state)
    return Path(path)


def load_state(path: str | Path, like: TrainState) -> TrainState:
    """Read a TrainState saved by `save_state` into the structure of `like`."""
    try:
        return eqx.tree_deserialise_leaves(path, like)
    except (OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"Checkpoint {path} does not match this configuration or is corrupt "
                         f"({e}). Use the config it was trained with, or delete it.") from e


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf."""


@dataclasses.dataclass
class TrainLog:
    losses: list[float] = dataclasses.field(default_factory=list)
    parts: list[dict] = dataclasses.field(default_factory=list)


def train(state: TrainState, data: dict, step_fn: Callable, *, steps: int,
          checkpoint: str | Path | None = None, checkpoint_every: int = 100,
          progress: bool = True, on_log: Callable[[int, dict], None] | None = None,
          log_every: int = 10) -> tuple[TrainState, TrainLog]:
    """Run `step_fn` until `state.step == steps`, checkpointing every `checkpoint_every`.

    If `checkpoint` exists it is resumed from (exactly: same data, key and optimizer
    state give bit-identical results). A NaN/inf loss stops training with
    `NonFiniteLossError`; the checkpoint on disk is then the last good one.
    """
    from tqdm.auto import tqdm

    if checkpoint is not None and Path(checkpoint).exists():
        state = load_state(checkpoint, state)
    log = TrainLog()
    start = int(state.step)
    bar = tqdm(total=steps, initial=start, disable=not progress, desc="train_surrogate")
    for i in range(start, steps):
        new, loss, parts = step_fn(state, data)
        loss = float(loss)
        if not np.isfinite(loss):
            bar.close()
            where = f"; the last good checkpoint is {checkpoint}" if checkpoint else ""
            raise NonFiniteLossError(
                f"Training loss became {loss} at step {i + 1}{where}. Lower the learning "
                "rate or the clip norm, or check the dataset for NaN.")
        state = new
        log.losses.append(loss)
        bar.update(1)
        if (i + 1) % log_every == 0:
            p = {k: float(v) for k, v in parts.items()}
            log.parts.append({"step": i + 1, "loss": loss, **p})
            bar.set_postfix(loss=f"{loss:.4f}")
            if on_log is not None:
                on_log(i + 1, {"loss": loss, **p})
        if checkpoint is not None and ((i + 1) % checkpoint_every == 0 or i + 1 == steps):
            save_state(checkpoint, state)
    bar.close()
    return state, log
