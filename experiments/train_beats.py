"""Train the beat activation network on an annotated corpus (train split; valid for selection)."""

import dataclasses
import json
import time
from pathlib import Path

import jax.numpy as jnp
import jax.random as jr
import matplotlib
import numpy as np

matplotlib.use("Agg")

from experiments._job import BaseConfig, ConfigError, Run, check_range, job  # noqa: E402
from experiments._job import OptimConfig as _OptimConfig  # noqa: E402
from nrtjax import _train  # noqa: E402
from nrtjax.beats import checkpoint as ckpt_io  # noqa: E402
from nrtjax.beats import data as bdata  # noqa: E402
from nrtjax.beats import train as btrain  # noqa: E402
from nrtjax.beats.features import FEATURES_ID, FPS, N_BANDS  # noqa: E402
from nrtjax.beats.network import HYPERPARAMETERS, BeatNet  # noqa: E402
from nrtjax.io import write_json  # noqa: E402


@dataclasses.dataclass
class ModelConfig:
    hidden: int = 32
    n_blocks: int = 8
    kernel: int = 5
    dropout: float = 0.1
    causal: bool = False
    tempo_bins: int = 0   # a tempo head over this many log-spaced tempi (0: none; 80: 24 per octave)
    dtype: str = "float32"

    def __post_init__(self):
        check_range("model.hidden", self.hidden, low=1, high=1024)
        check_range("model.n_blocks", self.n_blocks, low=1, high=14)
        check_range("model.kernel", self.kernel, low=1, high=31)
        if self.kernel % 2 == 0:
            raise ConfigError(f"model.kernel={self.kernel} must be odd.")
        check_range("model.dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        if self.tempo_bins != 0:
            check_range("model.tempo_bins", self.tempo_bins, low=2, high=1000)
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"model.dtype={self.dtype!r}: choose float32 or float64.")


@dataclasses.dataclass
class OptimConfig(_OptimConfig):
    steps: int = 10000
    crop: int = 1500
    checkpoint_every: int = 500
    patience: int = 0
    max_minutes: float = 0.0
    # Tempo augmentation: each crop's tempo changed by a factor in [1/(1+s), 1+s] (0: off).
    stretch: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check_range("optim.stretch", self.stretch, low=0.0, high=1.0)
        check_range("optim.patience", self.patience, low=0)
        check_range("optim.max_minutes", self.max_minutes, low=0.0)


@dataclasses.dataclass
class LossConfig:
    pos_weight: float = 1.0
    downbeat: float = 1.0
    tempo: float = 0.1   # the tempo head's cross-entropy (model.tempo_bins > 0)

    def __post_init__(self):
        check_range("loss.pos_weight", self.pos_weight, low=0.0, low_open=True)
        check_range("loss.downbeat", self.downbeat, low=0.0)
        check_range("loss.tempo", self.tempo, low=0.0)


@dataclasses.dataclass
class Config(BaseConfig):
    corpus: str = ""
    extra_corpora: list[str] = dataclasses.field(default_factory=list)  # more corpus folders
    cache_dir: str = "outputs/beat_features"
    init_from: str = ""
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    progress: bool = True

    def __post_init__(self):
        if not self.corpus:
            raise ConfigError("corpus is required: nrtjax train_beats corpus=DIR (a folder "
                              "with a manifest JSON, FLAC files and .beats files).")


def load_data(cfg: Config) -> tuple[dict, dict, dict]:
    """Train and valid splits (features cached) of `corpus` and any `extra_corpora`
    (their splits join; an extra corpus's item names get its version as a prefix), and
    the corpora's identity."""
    items, manifest = bdata.read_corpus(cfg.corpus)
    corpus = {"path": str(cfg.corpus), "manifest_sha256": bdata.manifest_hash(manifest),
              "version": manifest.get("version", Path(cfg.corpus).name), "extra": []}
    for path in cfg.extra_corpora:
        more, extra = bdata.read_corpus(path)
        version = extra.get("version", Path(path).name)
        items += [it._replace(name=f"{version}-{it.name}") for it in more]
        corpus["extra"].append({"path": str(path), "manifest_sha256": bdata.manifest_hash(extra),
                                "version": version})
    tag = FEATURES_ID
    train = bdata.cached_split(items, "train", cfg.cache_dir, tag, progress=cfg.progress)
    valid = bdata.cached_split(items, "valid", cfg.cache_dir, tag, progress=cfg.progress)
    corpus.update({"n_train": int(train["names"].size), "n_valid": int(valid["names"].size),
                   "train_hours": float(train["x"].shape[1] / FPS / 3600),
                   "train_items": train["names"].tolist(), "valid_items": valid["names"].tolist()})
    return train, valid, corpus


def build_model(cfg: Config, train: dict, key) -> BeatNet:
    m = cfg.model
    if cfg.init_from:
        model = ckpt_io.load_model(cfg.init_from)
        if not isinstance(model, BeatNet):
            raise ConfigError(f"init_from={cfg.init_from} is an ensemble of "
                              f"{model.n_members} networks; start from one network's .eqx.")
        want = {k: getattr(m, k) for k in HYPERPARAMETERS if k != "bands"}
        have = {k: model.hyperparameters[k] for k in want}
        if want != have:
            raise ConfigError(f"init_from={cfg.init_from} has model settings {have}, the config "
                              f"{want}; set model.* to match it.")
        return model
    x = train["x"].astype(np.float64)
    return BeatNet(bands=N_BANDS, hidden=m.hidden, n_blocks=m.n_blocks, kernel=m.kernel,
                   dropout=m.dropout, causal=m.causal, tempo_bins=m.tempo_bins,
                   mean=x.mean(axis=1),
                   std=x.std(axis=1) + 1e-3, dtype=jnp.dtype(m.dtype), key=key)


def _rank(entry: dict) -> tuple:
    """A validation entry's rank: the peak-picking F first, then the lower loss."""
    return np.nan_to_num(entry["f_peak"]), -entry["loss"]


class Selection:
    """Validation after every checkpoint: keeps the best model (by peak-picking F, then
    loss) in `beatnet.eqx` and the history in `selection.json`, both resumable, and says
    when to stop (patience, time budget)."""

    def __init__(self, run: Run, valid: dict, weights, card: dict, cfg: Config):
        self.run, self.valid, self.weights, self.card, self.cfg = run, valid, weights, card, cfg
        self.curve_path = run.path("loss_curve.json")
        self.curve = (json.loads(self.curve_path.read_text()) if self.curve_path.exists()
                      else [])
        self.path = run.path("selection.json")
        self.model_path = run.path("beatnet.eqx")
        self.state = (json.loads(self.path.read_text()) if self.path.exists()
                      else {"history": [], "best": None, "train_seconds": 0.0})
        self.t0 = time.perf_counter()
        self.seconds0 = self.state["train_seconds"]

    def seconds(self) -> float:
        return self.seconds0 + time.perf_counter() - self.t0

    def __call__(self, state) -> bool:
        step = int(state.step)
        train_s = self.seconds()
        metrics = btrain.evaluate(state.model, self.valid, self.weights, fps=FPS)
        entry = {"step": step, "train_seconds": train_s, **metrics}
        self.state["history"].append(entry)
        best = self.state["best"]
        if best is None or _rank(entry) > _rank(best):
            self.state["best"] = entry
            ckpt_io.save_model(self.model_path, state.model, info={
                **self.card, "valid": entry, "train_seconds": train_s, "step": step})
        self.state["train_seconds"] = self.seconds()
        write_json(self.path, self.state)
        write_json(self.curve_path, self.curve)
        self.run.log({f"valid_{k}": v for k, v in metrics.items()}, step=step)
        b = self.state["best"]
        print(f"train_beats: step {step}: valid loss {metrics['loss']:.4f}, F(peaks) "
              f"{metrics['f_peak']:.3f}"
              + (f", tempo Acc1 {metrics['tempo_acc1']:.3f} Acc2 {metrics['tempo_acc2']:.3f}"
                 if "tempo_acc1" in metrics else "")
              + f"; best step {b['step']} F {b['f_peak']:.3f}", flush=True)
        o = self.cfg.optim
        stale = (step - b["step"]) // o.checkpoint_every
        if o.patience and stale >= o.patience:
            print(f"train_beats: no improvement in {stale} validations: stopping", flush=True)
            return True
        if o.max_minutes and train_s > 60 * o.max_minutes:
            print(f"train_beats: time budget of {o.max_minutes:g} min reached: stopping",
                  flush=True)
            return True
        return False


def loss_figure(log_parts: list[dict], history: list[dict]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    if log_parts:
        ax[0].plot([p["step"] for p in log_parts], [p["loss"] for p in log_parts], lw=0.8,
                   label="train (batch)")
    ax[0].plot([h["step"] for h in history], [h["loss"] for h in history], "o-", label="valid")
    ax[0].set(xlabel="step", ylabel="weighted BCE", title="loss")
    ax[0].legend()
    ax[1].plot([h["step"] for h in history], [h["f_peak"] for h in history], "o-")
    ax[1].set(xlabel="step", ylabel="beat F (peak picking)", title="valid F")
    return fig


@job("train_beats", Config)
def main(run: Run) -> dict:
    from nrtjax.io import save_figure

    cfg = run.cfg
    k_model, k_train = jr.split(run.key)
    train, valid, corpus = load_data(cfg)
    o = cfg.optim
    packed = {k: jnp.asarray(v)
              for k, v in bdata.pack(train, btrain.source_frames(o.crop, o.stretch)).items()}
    model = build_model(cfg, train, k_model)
    optimizer = o.optimizer(decay_mask=btrain.decay_mask)
    state = _train.init_state(model, optimizer, key=k_train)
    weights = btrain.BeatLossWeights(cfg.loss.pos_weight, cfg.loss.downbeat, cfg.loss.tempo)
    step_fn = btrain.make_step_fn(optimizer, weights, batch_size=o.batch_size, crop=o.crop,
                                  stretch=o.stretch)
    card = {"config": dataclasses.asdict(cfg), "corpus": corpus, "fps": FPS,
            "n_parameters": n_params(model)}
    if cfg.init_from:  # a warm start: its own card says what it was trained on, and how long
        card["init_from"] = ckpt_io.model_card(cfg.init_from)
    select = Selection(run, valid, weights, card, cfg)

    def on_log(i, parts):
        select.curve.append({"step": i, **parts})
        run.log(parts, step=i)

    state, _ = _train.train(
        state, packed, step_fn, steps=o.steps, checkpoint=run.path("train_state.eqx"),
        checkpoint_every=o.checkpoint_every, progress=cfg.progress, on_log=on_log,
        on_checkpoint=select, desc="train_beats")
    save_figure(loss_figure(select.curve, select.state["history"]), run.path("loss_curve.png"))
    best = select.state["best"]
    return {"train_seconds": select.seconds(), "steps": int(state.step),
            "best_step": best["step"], "valid_loss": best["loss"],
            "valid_f_peak": best["f_peak"], "n_parameters": card["n_parameters"],
            "corpus_sha256": corpus["manifest_sha256"], "model": select.model_path.name}


def n_params(model) -> int:
    import equinox as eqx
    import jax

    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    return int(sum(x.size for x in leaves)) - 2 * model.bands  # minus the normalisation


if __name__ == "__main__":
    main()
