"""Training the beat network: random crops, weighted binary cross-entropy on widened
targets, one jitted step, and validation (loss and a peak-picking beat F-measure).

The optimizer, train state, checkpoints, exact resume and NaN stop are shared with the
other networks (`nrtjax._train`).
"""

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from .._train import TrainState
from .data import WIDEN
from .network import BeatNet


class BeatLossWeights(NamedTuple):
    """`pos_weight`: weight of a target's positive term (beat frames are ~5 % of all
    frames); `downbeat`: weight of the downbeat loss relative to the beat loss."""

    pos_weight: float = 1.0
    downbeat: float = 1.0


def decay_mask(model: BeatNet):
    """AdamW's decay mask: every weight decays except the (untrained) input
    normalisation."""
    mask = jax.tree_util.tree_map(lambda _: True, model)
    return eqx.tree_at(lambda m: (m.mean, m.std), mask, (False, False))


def source_frames(crop: int, stretch: float = 0.0) -> int:
    """Frames a crop of `crop` frames is read from when its tempo is changed by up to a
    factor `1 + stretch` ([`sample_batch`][]): pack the training arrays for this length."""
    return crop if stretch == 0 else int(np.ceil((crop - 1) * (1 + stretch))) + 2


def sample_batch(data: dict, *, key: PRNGKeyArray, batch_size: int, crop: int,
                 stretch: float = 0.0) -> dict:
    """`batch_size` random crops of `crop` frames from packed training arrays
    ([`pack`][nrtjax.beats.data.pack] with [`source_frames`][]`(crop, stretch)`), each
    start drawn uniformly from `data["starts"]`.

    With `stretch` > 0 each crop's tempo is changed by a factor $r$ drawn log-uniformly
    from $[1/(1 + s), 1 + s]$, as a different hop size would (Böck & Davies 2020 augment
    tempo this way): output frame $j$ is the spectrogram linearly interpolated at source
    frame $j r$, an annotated beat at source frame $k$ moves to frame $\\mathrm{round}(k/r)$
    (its neighbours get [`WIDEN`][nrtjax.beats.data.WIDEN] again), and a frame is
    scored where both source frames it reads are.

    **Returns:** `{"x": (b, bands, crop), "y": (b, 2, crop), "mask": (b, crop)}`.
    """
    ks, kr = jr.split(key)
    start = data["starts"][jr.randint(ks, (batch_size,), 0, data["starts"].shape[0])]
    if stretch == 0:
        def crops(a):
            return jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(a, s, crop, axis=-1))(start)

        return {"x": crops(data["x"]), "y": crops(data["y"]), "mask": crops(data["mask"])}
    src = source_frames(crop, stretch)
    bound = np.log1p(stretch)
    rate = jnp.exp(jr.uniform(kr, (batch_size,), minval=-bound, maxval=bound))

    def one(s, r):
        x, y, m = (jax.lax.dynamic_slice_in_dim(data[k], s, src, axis=-1)
                   for k in ("x", "y", "mask"))
        pos = jnp.arange(crop) * r
        i0 = jnp.floor(pos).astype(jnp.int32)
        w = (pos - i0).astype(x.dtype)
        x_new = x[:, i0] * (1 - w)[None, :] + x[:, i0 + 1] * w[None, :]
        j = jnp.round(jnp.arange(src) / r).astype(jnp.int32)
        hit = jnp.zeros((2, crop), y.dtype).at[:, j].max((y == 1).astype(y.dtype), mode="drop")
        near = jnp.maximum(jnp.pad(hit[:, 1:], ((0, 0), (0, 1))),
                           jnp.pad(hit[:, :-1], ((0, 0), (1, 0))))
        y_new = jnp.maximum(hit, WIDEN * near)
        return x_new, y_new, m[i0] * m[i0 + 1]

    x, y, m = jax.vmap(one)(start, rate)
    return {"x": x, "y": y, "mask": m}


def bce_loss(logits: Float[Array, "*b 2 time"], y: Float[Array, "*b 2 time"],
             mask: Float[Array, "*b time"], weights: BeatLossWeights) -> tuple[Array, dict]:
    """Weighted binary cross-entropy, averaged over unmasked frames:
    $-(w_+ y \\log \\sigma(l) + (1 - y) \\log(1 - \\sigma(l)))$ per frame and task, the
    downbeat task weighted by `weights.downbeat`.

    **Returns:** `(loss, {"beat": ..., "downbeat": ...})`.
    """
    # log sigma(l) = -softplus(-l), log(1 - sigma(l)) = -softplus(l): stable for any l.
    per = weights.pos_weight * y * jax.nn.softplus(-logits) + (1 - y) * jax.nn.softplus(logits)
    m = mask[..., None, :].astype(per.dtype)
    task = jnp.sum(per * m, axis=(*range(per.ndim - 2), -1)) / jnp.maximum(jnp.sum(m) , 1.0)
    parts = {"beat": task[0], "downbeat": task[1]}
    return task[0] + weights.downbeat * task[1], parts


def batch_loss(model: BeatNet, batch: dict, weights: BeatLossWeights, *,
               key: PRNGKeyArray | None) -> tuple[Array, dict]:
    """The loss of `model` on a batch (dropout on when `key` is given)."""
    b = batch["x"].shape[0]
    if key is None:
        logits = jax.vmap(lambda x: model(x, inference=True))(batch["x"])
    else:
        logits = jax.vmap(lambda x, k: model(x, key=k, inference=False))(
            batch["x"], jr.split(key, b))
    return bce_loss(logits, batch["y"].astype(logits.dtype), batch["mask"], weights)


def apply_update(model: BeatNet, opt_state, batch: dict, optimizer: optax.GradientTransformation,
                 weights: BeatLossWeights, *, key: PRNGKeyArray | None):
    """Loss, gradient and one optimizer update (pure). Returns `(model, opt_state, loss,
    parts)`; `loss` is the value before the update."""
    (loss, parts), grads = eqx.filter_value_and_grad(batch_loss, has_aux=True)(
        model, batch, weights, key=key)
    params = eqx.filter(model, eqx.is_inexact_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state, loss, parts


def make_step_fn(optimizer: optax.GradientTransformation, weights: BeatLossWeights, *,
                 batch_size: int, crop: int, stretch: float = 0.0) -> Callable:
    """The one jitted training step `(state, data) -> (state, loss, parts)` on packed
    arrays (`stretch`: tempo augmentation, see [`sample_batch`][])."""

    @eqx.filter_jit
    def step(state: TrainState, data: dict):
        key, kb, kd = jr.split(state.key, 3)
        batch = sample_batch(data, key=kb, batch_size=batch_size, crop=crop, stretch=stretch)
        model, opt_state, loss, parts = apply_update(state.model, state.opt_state, batch,
                                                     optimizer, weights, key=kd)
        return TrainState(model, opt_state, state.step + 1, jr.key_data(key)), loss, parts

    return step


def peak_pick(act: np.ndarray, fps: float, *, threshold: float = 0.3,
              radius: float = 0.07) -> np.ndarray:
    """Beat times (s) at the activation's local maxima: frames that are the largest
    within `radius` seconds on either side and at least `threshold` (a decoder-free read
    of the activation, used to compare checkpoints during training)."""
    from scipy.ndimage import maximum_filter1d

    a = np.asarray(act, np.float64)
    r = max(1, int(round(radius * fps)))
    peaks = np.flatnonzero((a >= threshold) & (a == maximum_filter1d(a, 2 * r + 1,
                                                                        mode="constant")))
    if peaks.size:  # a flat top counts once
        peaks = peaks[np.concatenate([[True], np.diff(peaks) > r])]
    return peaks / fps


@eqx.filter_jit
def _logits(model: BeatNet, x: Float[Array, "bands time"]) -> Float[Array, "2 time"]:
    return model(x, inference=True)


def evaluate(model: BeatNet, split: dict, weights: BeatLossWeights, *, fps: float,
             bucket: int = 1000) -> dict:
    """Validation metrics on one split ([`cached_split`][nrtjax.beats.data.cached_split]):
    the loss on whole items and the mean beat F-measure of [`peak_pick`][] against the
    widened targets' centres (items without beats after 5 s are skipped for F).

    Items are zero-padded to a multiple of `bucket` frames (few compilations); the padding
    is not scored.
    """
    from ..audio.beat_eval import f_measure

    off = split["offsets"]
    total, count, fs = {"beat": 0.0, "downbeat": 0.0}, 0.0, []
    for i in range(off.size - 1):
        x = split["x"][:, off[i]:off[i + 1]]
        y = split["y"][:, off[i]:off[i + 1]]
        n = x.shape[1]
        size = bucket * -(-n // bucket)
        logits = np.asarray(_logits(model, jnp.asarray(np.pad(x, ((0, 0), (0, size - n))))))
        logits = logits[:, :n]
        _, parts = bce_loss(jnp.asarray(logits), jnp.asarray(y), jnp.ones(n), weights)
        for k in total:
            total[k] += float(parts[k]) * n
        count += n
        ref = np.flatnonzero(y[0] == 1.0) / fps
        if np.sum(ref > 5.0) >= 2:
            fs.append(f_measure(ref, peak_pick(1 / (1 + np.exp(-logits[0])), fps)))
    out = {f"loss_{k}": v / count for k, v in total.items()}
    out["loss"] = out["loss_beat"] + weights.downbeat * out["loss_downbeat"]
    out["f_peak"] = float(np.mean(fs)) if fs else float("nan")
    return out
