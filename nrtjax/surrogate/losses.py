"""Training losses: $L = L_{mse} + \\lambda_{plv} L_{plv} + \\lambda_{f} L_{freq} + \\lambda_a L_{amp}$."""

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .tcn import Surrogate


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Weights of the physics-informed terms (the MSE term has weight 1)."""

    plv: float = 1.0
    freq: float = 1.0
    amp: float = 0.5


def _masked_mean(x: Float[Array, "*b time"], mask: Float[Array, "*b time"]) -> Float[Array, ""]:
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def loss_mse(out: Float[Array, "b 4 time"], target: Float[Array, "b 4 time"],
             mask: Float[Array, "b time"]) -> Float[Array, ""]:
    """Mean squared error over all four (order-1) output channels."""
    return _masked_mean(jnp.mean((out - target) ** 2, axis=1), mask)


def loss_plv(out: Float[Array, "b 4 time"], phase: Float[Array, "b time"],
             mask: Float[Array, "b time"]) -> Float[Array, ""]:
    """$1 - |\\langle e^{i(\\phi_{pred} - \\phi_{gt})}\\rangle_t|$, averaged over songs, with
    $e^{i\\phi_{pred}} = (c + i s)/|c + i s|$."""
    c, s = out[:, 0], out[:, 1]
    norm = jnp.sqrt(c**2 + s**2 + 1e-12)
    re = (c * jnp.cos(phase) + s * jnp.sin(phase)) / norm
    im = (s * jnp.cos(phase) - c * jnp.sin(phase)) / norm
    n = jnp.maximum(jnp.sum(mask, axis=-1), 1.0)
    plv = jnp.hypot(jnp.sum(re * mask, -1) / n, jnp.sum(im * mask, -1) / n)
    return 1.0 - jnp.mean(plv)


def loss_freq(freq_pred: Float[Array, "b time"], freq: Float[Array, "b time"],
              mask: Float[Array, "b time"]) -> Float[Array, ""]:
    """Mean absolute motor-frequency error in Hz."""
    return _masked_mean(jnp.abs(freq_pred - freq), mask)


def loss_amp(amp_pred: Float[Array, "b time"], amp: Float[Array, "b time"],
             mask: Float[Array, "b time"]) -> Float[Array, ""]:
    """Mean squared amplitude error."""
    return _masked_mean((amp_pred - amp) ** 2, mask)


def targets(model: Surrogate, phase, freq, amp) -> Float[Array, "b 4 time"]:
    """The ground truth in the network's raw output coordinates."""
    return jnp.stack([jnp.cos(phase), jnp.sin(phase),
                      (freq - model.freq_center) / model.freq_scale, amp - 1.0], axis=1)


def total_loss(model: Surrogate, batch: dict, weights: LossWeights, *, key: PRNGKeyArray | None,
               inference: bool = False) -> tuple[Float[Array, ""], dict]:
    """The training loss on a batch `{"x": (b, c, t), "phase", "freq", "amp", "mask": (b, t)}`.

    **Returns:** `(loss, parts)` with the unweighted terms in `parts`.
    """
    b = batch["x"].shape[0]
    keys = None if key is None else jax.random.split(key, b)
    if keys is None:
        out = jax.vmap(lambda x: model(x, inference=inference))(batch["x"])
    else:
        out = jax.vmap(lambda x, k: model(x, key=k, inference=inference))(batch["x"], keys)
    mask = batch["mask"]
    tgt = targets(model, batch["phase"], batch["freq"], batch["amp"])
    parts = {
        "mse": loss_mse(out, tgt, mask),
        "plv": loss_plv(out, batch["phase"], mask),
        "freq": loss_freq(model.freq_center + model.freq_scale * out[:, 2], batch["freq"], mask),
        "amp": loss_amp(1.0 + out[:, 3], batch["amp"], mask),
    }
    loss = parts["mse"] + weights.plv * parts["plv"] + weights.freq * parts["freq"] \
        + weights.amp * parts["amp"]
    return loss, parts
