"""Saving and loading beat networks: Equinox serialisation for the weights, a JSON beside
it (same stem) for the hyperparameters and the model card (corpus, metrics, timing)."""

import json
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr

from ..io import atomic_path, write_json
from .network import HYPERPARAMETERS, BeatEnsemble, BeatNet

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
SHIPPED = CHECKPOINT_DIR / "beatnet.eqx"
"""The beat network shipped with nrtjax (its model card is `beatnet.json` beside it)."""


def save_model(path: str | Path, model: BeatNet | BeatEnsemble, *,
               info: dict | None = None) -> Path:
    """Write `model` (`eqx.tree_serialise_leaves`) and a JSON beside it holding its
    hyperparameters, dtype, number of networks (`n_members`, 1 for a single
    [`BeatNet`][nrtjax.beats.BeatNet]) and `info` (free-form: corpus, metrics, ...), both
    atomically."""
    path = Path(path)
    n = model.n_members if isinstance(model, BeatEnsemble) else 1
    write_json(path.with_suffix(".json"), {**(info or {}), "model": model.hyperparameters,
                                           "dtype": str(model.dtype), "n_members": n})
    with atomic_path(path) as tmp:
        eqx.tree_serialise_leaves(tmp, model)
    return path


def model_card(path: str | Path | None = None) -> dict:
    """The JSON saved beside a checkpoint (the shipped one by default)."""
    path = SHIPPED if path is None else Path(path)
    meta = path.with_suffix(".json")
    if not meta.exists():
        raise FileNotFoundError(f"Beat network metadata {meta} not found. Train a model with "
                                "`nrtjax train_beats` (it writes the .eqx and the .json).")
    return json.loads(meta.read_text())


def load_model(path: str | Path | None = None) -> BeatNet | BeatEnsemble:
    """Load a beat network: the checkpoint shipped with nrtjax, or `path` (a `.eqx` file
    with its `.json` beside it). A card with `n_members` > 1 gives a
    [`BeatEnsemble`][nrtjax.beats.BeatEnsemble].

    **Raises:** `FileNotFoundError` or `ValueError` naming the file and the fix.
    """
    path = SHIPPED if path is None else Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Beat network checkpoint {path} not found. Train one with "
                                "`nrtjax train_beats`, or pass checkpoint=None for the shipped "
                                "model.")
    card = model_card(path)
    try:
        # Cards written before the tempo head existed have no tempo_bins: no head.
        hyper = {k: card["model"][k] if k != "tempo_bins" else card["model"].get(k, 0)
                 for k in HYPERPARAMETERS}
        n = int(card.get("n_members", 1))
        nets = [BeatNet(**hyper, dtype=jnp.dtype(card["dtype"]), key=jr.key(i))
                for i in range(n)]
        skeleton = nets[0] if n == 1 else BeatEnsemble(nets)
        return eqx.tree_deserialise_leaves(path, skeleton)
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as e:
        raise ValueError(f"Cannot read beat network checkpoint {path}: {e}. It does not match "
                         f"{path.with_suffix('.json').name}; retrain or restore both files.") from e
