"""Surrogate metrics (docs/surrogate.md), each defined once here, and inference.

All metrics are computed after a start-up of `startup` seconds (5 s by default) so that
the ASHLE transient from its initial state does not dominate.
"""

import json
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._signal import Signal
from ..analysis import plv
from .tcn import TCN, Surrogate

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
SHIPPED = CHECKPOINT_DIR / "surrogate.eqx"
# ASHLE counts as locked to its stimulus on a song when PLV(angle z, angle F) >= LOCK_PLV.
LOCK_PLV = 0.95
NET_KEYS = ("in_channels", "hidden", "n_blocks", "kernel", "dropout", "heads", "window")
"""The hyperparameters of the network ([`TCN`][nrtjax.surrogate.TCN]) in a checkpoint's JSON."""
PHYSICS_KEYS = ("fs", "freq_center", "freq_scale", "freq_tau", "lock_f0", "lock_elasticity",
                "tempo_clip")
"""The settings of the physics wrapper ([`Surrogate`][nrtjax.surrogate.Surrogate])."""


class SurrogateOutput(NamedTuple):
    """The surrogate's prediction on a signal's grid: motor `phase` (rad, comparable to
    `angle(z)`), motor `freq` (Hz, comparable to `f`) and amplitude `amp` (`|z|`)."""

    phase: Float[Array, "*b time"]
    freq: Float[Array, "*b time"]
    amp: Float[Array, "*b time"]


def decode(model: Surrogate, out: Float[Array, "*b 4 time"]) -> SurrogateOutput:
    """Raw network outputs -> phase, frequency (Hz) and amplitude."""
    return SurrogateOutput(jnp.arctan2(out[..., 1, :], out[..., 0, :]),
                           model.freq_center + model.freq_scale * out[..., 2, :],
                           1.0 + out[..., 3, :])


@eqx.filter_jit
def predict_arrays(model: Surrogate, x: Float[Array, "*b 2 time"]) -> SurrogateOutput:
    """Inference on stacked (real, imaginary) forcings, batched over leading axes."""
    x = x.astype(model.head.weight.dtype)
    def fn(a):
        return model(a, inference=True)
    for _ in range(x.ndim - 2):
        fn = jax.vmap(fn)
    return decode(model, fn(x))


def predict(model: Surrogate, sig: Signal) -> SurrogateOutput:
    """The surrogate's motor phase, frequency and amplitude on `sig`'s grid.

    **Arguments:** `model`: a trained [`Surrogate`][] (e.g. from [`load`][]); `sig`: the
    complex stimulus from [`render_song`][] (256 Hz, the rate the model was trained at).

    **Returns:** a [`SurrogateOutput`][] of `(time,)` arrays.
    """
    xs = jnp.asarray(sig.xs)
    if xs.ndim != 1 or not jnp.iscomplexobj(xs):
        raise ValueError("predict needs the complex single-channel stimulus from render_song.")
    if sig.dt is None or abs(sig.fs - model.fs) > 1e-6 * model.fs:
        raise ValueError(f"predict needs a stimulus sampled at {model.fs} Hz (the model's rate), "
                         f"got fs={sig.fs}; render it with render_song(..., fs={model.fs}).")
    return predict_arrays(model, jnp.stack([jnp.real(xs), jnp.imag(xs)]))


def save_model(path: str | Path, model: Surrogate, *, dtype: str) -> Path:
    """Write `model` (`eqx.tree_serialise_leaves`) and its hyperparameters (a JSON file
    beside it, same stem: `NET_KEYS`, `PHYSICS_KEYS` and `dtype`), both atomically."""
    from ..io import atomic_path, write_json

    path = Path(path)
    net = model.net
    hyper = {"in_channels": net.proj.in_channels, "hidden": net.proj.out_channels,
             "n_blocks": len(net.blocks), "kernel": net.blocks[0].conv1.kernel_size[0]
             if net.blocks else 1, "dropout": net.blocks[0].dropout.p if net.blocks else 0.0,
             "heads": net.attention.heads if net.attention is not None else 0,
             "window": net.attention.window if net.attention is not None else 1}
    hyper |= {k: getattr(model, k) for k in PHYSICS_KEYS}
    hyper["tempo_clip"] = list(hyper["tempo_clip"])
    write_json(path.with_suffix(".json"), {**hyper, "dtype": dtype})
    with atomic_path(path) as tmp:
        eqx.tree_serialise_leaves(tmp, model)
    return path


def load(path: str | Path | None = None) -> Surrogate:
    """Load a surrogate: the checkpoint shipped with nrtjax, or `path` (a `.eqx` file
    with its `.json` hyperparameters beside it, as [`save_model`][] writes them).

    **Raises:** `FileNotFoundError` or `ValueError` naming the file and the fix.
    """
    path = SHIPPED if path is None else Path(path)
    meta = path.with_suffix(".json")
    if not path.exists() or not meta.exists():
        raise FileNotFoundError(f"Surrogate checkpoint {path} (and {meta.name} beside it) not "
                                "found. Train one with `nrtjax train_surrogate`.")
    hyper = json.loads(meta.read_text())
    unknown = sorted(set(hyper) - {*NET_KEYS, *PHYSICS_KEYS, "dtype"})
    if unknown:
        raise ValueError(f"{meta} has keys this nrtjax does not know ({', '.join(unknown)}): "
                         "it was written by an older nrtjax, whose optional modes are gone. "
                         "Retrain it with `nrtjax train_surrogate`.")
    try:
        dtype = jnp.dtype(hyper["dtype"])
        net = TCN(**{k: hyper[k] for k in NET_KEYS}, dtype=dtype, key=jr.key(0))
        skeleton = Surrogate(net, **{k: hyper[k] for k in PHYSICS_KEYS})
        return eqx.tree_deserialise_leaves(path, skeleton)
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as e:
        raise ValueError(f"Cannot read surrogate checkpoint {path}: {e}. It does not match "
                         f"{meta.name}; retrain or restore both files.") from e


# --- metrics (each defined once) -------------------------------------------------------

def tracking_plv(phase_pred: Float[ArrayLike, "*b time"], phase_gt: Float[ArrayLike, "*b time"]):
    """$|\\langle e^{i(\\phi_{pred} - \\phi_{gt})}\\rangle_t|$ per song."""
    return plv(phase_pred, phase_gt)


def plv_retention(phase_pred, phase_gt, phase_stim):
    """$\\mathrm{PLV}(\\phi_{pred}, \\phi_{stim}) / \\mathrm{PLV}(\\phi_{gt}, \\phi_{stim})$
    per song: 1 when the surrogate locks to the stimulus exactly as ASHLE does."""
    return plv(phase_pred, phase_stim) / plv(phase_gt, phase_stim)


def freq_mae(freq_pred, freq_gt):
    """Mean absolute motor-frequency error in Hz per song."""
    return jnp.mean(jnp.abs(jnp.asarray(freq_pred) - jnp.asarray(freq_gt)), axis=-1)


def pearson_r(a: Float[ArrayLike, "..."], b: Float[ArrayLike, "..."]) -> Float[Array, ""]:
    """Pearson correlation of all samples of `a` and `b` pooled (flattened)."""
    a = jnp.ravel(jnp.asarray(a, jnp.result_type(a, 0.0)))
    b = jnp.ravel(jnp.asarray(b, a.dtype))
    a, b = a - a.mean(), b - b.mean()
    return jnp.sum(a * b) / jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))


def _summary(name: str, values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {f"{name}_mean": float(v.mean()), f"{name}_median": float(np.median(v)),
            f"{name}_std": float(v.std()),
            f"{name}_min": float(v.min()), f"{name}_max": float(v.max()),
            f"{name}_per_song": v.tolist()}


def surrogate_metrics(pred: SurrogateOutput, truth: SurrogateOutput,
                      phase_stim: Float[ArrayLike, "songs time"], *, fs: float,
                      startup: float = 5.0) -> dict:
    """All section-7 metrics over songs (arrays `(songs, time)`), after `startup` s.

    **Returns:** a flat dict: per-song lists and mean/std/min/max of `tracking_plv`,
    `plv_retention`, `freq_mae_hz`, `amp_r`; pooled `freq_r` and `amp_r_pooled`; the
    ground truth's own PLV to the stimulus per song (`gt_stim_plv_*`) and the fraction of
    songs on which it is locked (`gt_lock_fraction`, PLV >= `LOCK_PLV`).
    """
    k = int(round(startup * fs))
    def cut(a):
        return np.asarray(a, dtype=np.float64)[..., k:]
    pp, gp, sp = cut(pred.phase), cut(truth.phase), cut(phase_stim)
    out = {}
    out |= _summary("tracking_plv", tracking_plv(pp, gp))
    out |= _summary("plv_retention", plv_retention(pp, gp, sp))
    out |= _summary("freq_mae_hz", freq_mae(cut(pred.freq), cut(truth.freq)))
    per_amp = [float(pearson_r(a, b)) for a, b in zip(cut(pred.amp), cut(truth.amp))]
    out |= _summary("amp_r", per_amp)
    out["freq_r"] = float(pearson_r(cut(pred.freq), cut(truth.freq)))
    out["amp_r_pooled"] = float(pearson_r(cut(pred.amp), cut(truth.amp)))
    gt_stim = np.asarray(plv(gp, sp))
    out["gt_stim_plv_mean"] = float(np.mean(gt_stim))
    out["gt_stim_plv_per_song"] = gt_stim.tolist()
    out["gt_lock_fraction"] = float(np.mean(gt_stim >= LOCK_PLV))
    out["n_songs"] = int(pp.shape[0])
    out["startup_s"] = startup
    return out


def evaluate_dataset(model: Surrogate, data: dict, *, fs: float, startup: float = 5.0,
                     chunk: int = 8) -> tuple[dict, SurrogateOutput]:
    """Predict on a dataset from [`make_dataset`][] and compute `surrogate_metrics`."""
    x = np.stack([data["stim_re"], data["stim_im"]], axis=1)
    parts = [predict_arrays(model, jnp.asarray(x[i:i + chunk])) for i in range(0, len(x), chunk)]
    pred = SurrogateOutput(*[np.concatenate([np.asarray(getattr(p, f)) for p in parts])
                             for f in SurrogateOutput._fields])
    truth = SurrogateOutput(data["phase"], data["freq"], data["amp"])
    stim = np.arctan2(data["stim_im"], data["stim_re"])
    return surrogate_metrics(pred, truth, stim, fs=fs, startup=startup), pred
