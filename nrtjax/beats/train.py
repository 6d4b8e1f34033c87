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
from .network import BeatNet, tempo_grid


class BeatLossWeights(NamedTuple):
    """`pos_weight`: weight of a target's positive term (beat frames are ~5 % of all
    frames); `downbeat`: weight of the downbeat loss relative to the beat loss; `tempo`:
    weight of the tempo head's cross-entropy (networks with a tempo head only)."""

    pos_weight: float = 1.0
    downbeat: float = 1.0
    tempo: float = 0.1


TEMPO_SIGMA_OCTAVES = 0.03
"""S.d. (octaves) of the Gaussian on the log-tempo grid that is the tempo head's target
(the annotated tempo is itself uncertain by about a frame per beat interval)."""

MIN_TEMPO_COVER = 0.5
"""A crop has a tempo target when at least this fraction of its frames lie between two
annotated beats; its target is the median of their [`local_tempo`][nrtjax.beats.data.local_tempo]."""


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
    start drawn uniformly from `data["starts"]` (`data["tempo"]` may be absent: no crop
    then has a tempo target).

    With `stretch` > 0 each crop's tempo is changed by a factor $r$ drawn log-uniformly
    from $[1/(1 + s), 1 + s]$, as a different hop size would (Böck & Davies 2020 augment
    tempo this way): output frame $j$ is the spectrogram linearly interpolated at source
    frame $j r$, an annotated beat at source frame $k$ moves to frame $\\mathrm{round}(k/r)$
    (its neighbours get [`WIDEN`][nrtjax.beats.data.WIDEN] again), and a frame is
    scored where both source frames it reads are.

    **Returns:** `{"x": (b, bands, crop), "y": (b, 2, crop), "mask": (b, crop),
    "tempo": (b,)}`: `tempo` is each crop's annotated tempo in BPM (the median of
    `data["tempo"]` over its frames, times $r$), 0 where fewer than
    [`MIN_TEMPO_COVER`][nrtjax.beats.train.MIN_TEMPO_COVER] of its frames have one.
    """
    ks, kr = jr.split(key)
    start = data["starts"][jr.randint(ks, (batch_size,), 0, data["starts"].shape[0])]
    if stretch == 0:
        def crops(a):
            return jax.vmap(lambda s: jax.lax.dynamic_slice_in_dim(a, s, crop, axis=-1))(start)

        mask = crops(data["mask"])
        return {"x": crops(data["x"]), "y": crops(data["y"]), "mask": mask,
                "tempo": jax.vmap(_crop_tempo)(crops(_tempo(data)), mask)}
    src = source_frames(crop, stretch)
    bound = np.log1p(stretch)
    rate = jnp.exp(jr.uniform(kr, (batch_size,), minval=-bound, maxval=bound))

    def one(s, r):
        x, y, m, t = (jax.lax.dynamic_slice_in_dim(a, s, src, axis=-1)
                      for a in (data["x"], data["y"], data["mask"], _tempo(data)))
        pos = jnp.arange(crop) * r
        i0 = jnp.floor(pos).astype(jnp.int32)
        w = (pos - i0).astype(x.dtype)
        x_new = x[:, i0] * (1 - w)[None, :] + x[:, i0 + 1] * w[None, :]
        j = jnp.round(jnp.arange(src) / r).astype(jnp.int32)
        hit = jnp.zeros((2, crop), y.dtype).at[:, j].max((y == 1).astype(y.dtype), mode="drop")
        near = jnp.maximum(jnp.pad(hit[:, 1:], ((0, 0), (0, 1))),
                           jnp.pad(hit[:, :-1], ((0, 0), (1, 0))))
        y_new = jnp.maximum(hit, WIDEN * near)
        m_new = m[i0] * m[i0 + 1]
        return x_new, y_new, m_new, _crop_tempo(t[i0] * r, m_new)

    x, y, m, t = jax.vmap(one)(start, rate)
    return {"x": x, "y": y, "mask": m, "tempo": t}


def _tempo(data: dict) -> Array:
    """`data["tempo"]`, or zeros (no tempo targets) for arrays packed without it."""
    return data["tempo"] if "tempo" in data else jnp.zeros_like(data["mask"])


def _crop_tempo(tempo: Float[Array, " crop"], mask: Float[Array, " crop"]) -> Array:
    known = (tempo > 0) & (mask > 0)
    med = jnp.nanmedian(jnp.where(known, tempo, jnp.nan))
    return jnp.where(jnp.mean(known) >= MIN_TEMPO_COVER, med, 0.0)


def tempo_target(tempo_bpm: Float[Array, "*b"], grid: np.ndarray) -> Float[Array, "*b bins"]:
    """The tempo head's target: a Gaussian of s.d.
    [`TEMPO_SIGMA_OCTAVES`][nrtjax.beats.train.TEMPO_SIGMA_OCTAVES] in $\\log_2$ tempo
    around `tempo_bpm` on the `grid` (BPM), normalised; all zeros where `tempo_bpm` is
    0 or outside the grid (no target)."""
    tempo_bpm = jnp.asarray(tempo_bpm)
    g = jnp.log2(jnp.asarray(grid)).reshape((1,) * tempo_bpm.ndim + (-1,))
    t = jnp.log2(jnp.maximum(tempo_bpm, 1e-6))[..., None]
    w = jnp.exp(-0.5 * ((g - t) / TEMPO_SIGMA_OCTAVES) ** 2)
    inside = (tempo_bpm >= grid[0]) & (tempo_bpm <= grid[-1])
    return jnp.where(inside[..., None], w / jnp.sum(w, axis=-1, keepdims=True), 0.0)


def tempo_loss(logits: Float[Array, "*b bins"], tempo_bpm: Float[Array, "*b"],
               grid: np.ndarray) -> Array:
    """Cross-entropy of the tempo head against [`tempo_target`][], averaged over the
    crops that have a target (0 if none has)."""
    target = tempo_target(tempo_bpm, grid).astype(logits.dtype)
    per = -jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    has = jnp.sum(target, axis=-1)
    return jnp.sum(per * has) / jnp.maximum(jnp.sum(has), 1.0)


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
    """The loss of `model` on a batch (dropout on when `key` is given): [`bce_loss`][],
    plus `weights.tempo` times [`tempo_loss`][] when the network has a tempo head."""
    b = batch["x"].shape[0]
    if key is None:
        logits, tempo = jax.vmap(lambda x: model.forward(x, inference=True))(batch["x"])
    else:
        logits, tempo = jax.vmap(lambda x, k: model.forward(x, key=k, inference=False))(
            batch["x"], jr.split(key, b))
    loss, parts = bce_loss(logits, batch["y"].astype(logits.dtype), batch["mask"], weights)
    if tempo is not None:
        parts["tempo"] = tempo_loss(tempo, batch["tempo"], tempo_grid(model.tempo_bins))
        loss = loss + weights.tempo * parts["tempo"]
    return loss, parts


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
def _forward(model: BeatNet, x: Float[Array, "bands time"], length):
    return model.forward(x, length=length, inference=True)


def evaluate(model: BeatNet, split: dict, weights: BeatLossWeights, *, fps: float,
             bucket: int = 1000) -> dict:
    """Validation metrics on one split ([`cached_split`][nrtjax.beats.data.cached_split]):
    the loss on whole items and the mean beat F-measure of [`peak_pick`][] against the
    widened targets' centres (items without beats after 5 s are skipped for F). With a
    tempo head also its cross-entropy (`loss_tempo`) and its arg-max tempo's accuracy
    ([`tempo_accuracy`][nrtjax.audio.beat_eval.tempo_accuracy]: `tempo_acc1`,
    `tempo_acc2`) against each item's median annotated tempo (as a crop's target).

    Items are zero-padded to a multiple of `bucket` frames (few compilations); the padding
    is not scored.
    """
    from ..audio.beat_eval import f_measure, tempo_accuracy
    from .data import local_tempo

    off = split["offsets"]
    total, count, fs = {"beat": 0.0, "downbeat": 0.0}, 0.0, []
    tempo_ce, acc = [], []
    grid = tempo_grid(model.tempo_bins) if model.tempo_bins else None
    for i in range(off.size - 1):
        x = split["x"][:, off[i]:off[i + 1]]
        y = split["y"][:, off[i]:off[i + 1]]
        n = x.shape[1]
        size = bucket * -(-n // bucket)
        logits, tempo = _forward(model, jnp.asarray(np.pad(x, ((0, 0), (0, size - n)))),
                                 jnp.asarray(n))
        logits = np.asarray(logits)[:, :n]
        _, parts = bce_loss(jnp.asarray(logits), jnp.asarray(y), jnp.ones(n), weights)
        for k in total:
            total[k] += float(parts[k]) * n
        count += n
        ref = np.flatnonzero(y[0] == 1.0) / fps
        if np.sum(ref > 5.0) >= 2:
            fs.append(f_measure(ref, peak_pick(1 / (1 + np.exp(-logits[0])), fps)))
        bpm = (float(_crop_tempo(jnp.asarray(local_tempo(y, fps)), jnp.ones(n)))
               if grid is not None else 0.0)
        if bpm > 0:
            tempo_ce.append(float(tempo_loss(tempo, jnp.asarray(bpm), grid)))
            acc.append(tempo_accuracy(bpm, float(grid[int(np.argmax(tempo))])))
    out = {f"loss_{k}": v / count for k, v in total.items()}
    out["loss"] = out["loss_beat"] + weights.downbeat * out["loss_downbeat"]
    if grid is not None and tempo_ce:
        out["loss_tempo"] = float(np.mean(tempo_ce))
        out["loss"] += weights.tempo * out["loss_tempo"]
        out["tempo_acc1"], out["tempo_acc2"] = (float(v) for v in np.mean(acc, axis=0))
    out["f_peak"] = float(np.mean(fs)) if fs else float("nan")
    return out
