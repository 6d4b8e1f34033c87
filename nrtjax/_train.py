"""The training machinery every nrtjax network shares: the optimiser (also fitting's), a
serialisable train state, atomic checkpoints, exact resume and the NaN stop.

A network's own module supplies the jitted step `(state, data) -> (state, loss, parts)`
(see [`nrtjax.surrogate.make_step_fn`][] and [`nrtjax.beats.make_step_fn`][]); [`train`][]
runs it.
"""

import dataclasses
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from .io import atomic_path


def make_optimizer(lr: float, *, total_steps: int, warmup_steps: int = 0,
                   final_fraction: float = 0.02, clip_norm: float | None = 1.0,
                   weight_decay: float = 0.0, decay_mask=None) -> optax.GradientTransformation:
    """The one optimiser of nrtjax (fitting and every trainer): gradient clipping, then
    AdamW on a warmup + cosine-decay schedule.

    The step size rises linearly from `lr / warmup_steps` to `lr` over `warmup_steps`, then
    follows $\\eta(s) = \\eta_{end} + (\\eta - \\eta_{end})\\,\\tfrac12(1 + \\cos\\pi s/S)$
    down to $\\eta_{end}$ = `final_fraction * lr` at the end of the schedule; AdamW adds
    `weight_decay` times the parameters to Adam's direction before the step (decoupled
    weight decay; 0: plain Adam).

    **Arguments:**

    - `lr`: peak learning rate (in the fit's unconstrained coordinates for
        [`nrtjax.fitting.fit`][], where 0.05 is about 5% per step of a positive parameter).
    - `total_steps`: schedule length $S$ (warmup included).
    - `warmup_steps`: linear warmup (0: none, the cosine starts at `lr`).
    - `final_fraction`: the schedule's final fraction of `lr`.
    - `clip_norm`: global gradient-norm clip applied first (`None`: no clipping).
    - `weight_decay`, `decay_mask`: AdamW's decay and optax's `mask` (a callable
        `params -> pytree of bools`: which leaves decay; `None`: all).
    """
    if warmup_steps > 0:
        schedule = optax.warmup_cosine_decay_schedule(
            lr / warmup_steps, lr, warmup_steps=warmup_steps,
            decay_steps=max(total_steps, warmup_steps + 1), end_value=lr * final_fraction)
    else:
        schedule = optax.cosine_decay_schedule(lr, max(total_steps, 1), alpha=final_fraction)
    clip = optax.identity() if clip_norm is None else optax.clip_by_global_norm(clip_norm)
    return optax.chain(clip, optax.adamw(schedule, weight_decay=weight_decay, mask=decay_mask))


class TrainState(eqx.Module):
    """Everything a resumed run needs: model, optimizer state, step count and PRNG key
    (stored as raw key data so it serialises)."""

    model: eqx.Module
    opt_state: optax.OptState
    step: Array
    key_data: Array

    @property
    def key(self) -> PRNGKeyArray:
        return jr.wrap_key_data(self.key_data)


def init_state(model: eqx.Module, optimizer: optax.GradientTransformation, *,
               key: PRNGKeyArray) -> TrainState:
    """A fresh `TrainState`: `optimizer` initialised on `model`'s arrays, step 0, `key`."""
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    return TrainState(model, opt_state, jnp.asarray(0, jnp.int32), jr.key_data(key))


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
          log_every: int = 10, on_checkpoint: Callable[[TrainState], bool] | None = None,
          desc: str = "train_surrogate") -> tuple[TrainState, TrainLog]:
    """Run `step_fn` until `state.step == steps`, checkpointing every `checkpoint_every`.

    If `checkpoint` exists it is resumed from (exactly: same data, key and optimizer
    state give bit-identical results). A NaN/inf loss stops training with
    `NonFiniteLossError`; the checkpoint on disk is then the last good one.

    `on_checkpoint(state)`, if given, runs after every checkpoint step (whether or not a
    `checkpoint` path is set), e.g. to score a validation set; returning `True` stops
    training there (early stopping). `desc` labels the progress bar.
    """
    from tqdm.auto import tqdm

    if checkpoint is not None and Path(checkpoint).exists():
        state = load_state(checkpoint, state)
    log = TrainLog()
    start = int(state.step)
    bar = tqdm(total=steps, initial=start, disable=not progress, desc=desc)
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
        if (i + 1) % checkpoint_every == 0 or i + 1 == steps:
            if checkpoint is not None:
                save_state(checkpoint, state)
            if on_checkpoint is not None and on_checkpoint(state):
                break
    bar.close()
    return state, log
