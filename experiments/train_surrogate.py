"""Train the TCN surrogate of ASHLE on synthetic songs and evaluate it on held-out songs."""

import dataclasses
import json
import time

import jax

# Ground truth is integrated in float64 (the network itself trains in `model.dtype`).
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")

import nrtjax as nrt  # noqa: E402
from experiments._job import (  # noqa: E402
    BaseConfig, Run, check_choice, check_range, input_path, job)
from experiments._job import OptimConfig as _OptimConfig  # noqa: E402
from experiments._surrogate import (  # noqa: E402
    DataConfig, ModelConfig, build_model, datasets, evaluate_and_plot)
from nrtjax.surrogate import LossWeights  # noqa: E402

ABLATIONS = {"full": None, "no_plv": {"plv": 0.0}, "no_freq": {"freq": 0.0},
             "mse_only": {"plv": 0.0, "freq": 0.0, "amp": 0.0}}


@dataclasses.dataclass
class OptimConfig(_OptimConfig):
    steps: int = 1200
    batch_size: int = 16
    crop: int = 1024
    warm: int = 512
    warmup_steps: int = 30
    checkpoint_every: int = 50

    def __post_init__(self):
        super().__post_init__()
        check_range("optim.warm", self.warm, low=0, high=self.crop - 1)


@dataclasses.dataclass
class LossConfig:
    plv: float = 1.0
    freq: float = 1.0
    amp: float = 0.5

    def __post_init__(self):
        for k in ("plv", "freq", "amp"):
            check_range(f"loss.{k}", getattr(self, k), low=0.0)


@dataclasses.dataclass
class Config(BaseConfig):
    ablation: str = "full"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    resume_from: str | None = input_path(suffixes=(".eqx",))
    progress: bool = True

    def __post_init__(self):
        check_choice("ablation", self.ablation, tuple(ABLATIONS))
        if self.optim.crop > self.data.duration * self.data.fs:
            raise ValueError(f"optim.crop={self.optim.crop} is longer than a song "
                             f"({self.data.duration} s at {self.data.fs} Hz).")


def loss_weights(cfg: Config) -> LossWeights:
    w = dataclasses.asdict(cfg.loss)
    w.update(ABLATIONS[cfg.ablation] or {})
    return LossWeights(**w)


@job("train_surrogate", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    k_data, k_model, k_train = jr.split(run.key, 3)
    with run.phase("songs and their ASHLE ground truth"):
        train_set, heldout, val = datasets(cfg.data, key=k_data)
    model = build_model(cfg.model, fs=cfg.data.fs, key=k_model)
    o = cfg.optim
    optimizer = o.optimizer()
    state = nrt.surrogate.init_state(model, optimizer, key=k_train)
    weights = loss_weights(cfg)
    step_fn = nrt.surrogate.make_step_fn(optimizer, weights, batch_size=o.batch_size,
                                         crop=o.crop, warm=o.warm)
    arrays = nrt.surrogate.training_arrays(train_set, jnp.dtype(cfg.model.dtype))
    # The training state and its history (loss curve, seconds) are checkpoints: kept when
    # the run is interrupted, so that `resume=DIR` continues with the whole history.
    ckpt = run.checkpoint_path("train_state.eqx")
    history_path = run.checkpoint_path("train_history.json")
    if cfg.resume_from:
        import shutil

        ckpt.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cfg.resume_from, ckpt)
    parts, before_s = [], 0.0
    if ckpt.exists() and history_path.exists():
        done = int(nrt.surrogate.load_state(ckpt, state).step)
        parts = [p for p in json.loads(history_path.read_text()) if p["step"] <= done]
        before_s = parts[-1]["seconds"] if parts else 0.0
    start = time.perf_counter()

    def on_log(i, p):
        run.log(p, step=i)
        parts.append({"step": i, **p, "seconds": before_s + time.perf_counter() - start})
        nrt.io.write_json(history_path, parts)

    state, log = nrt.surrogate.train(
        state, arrays, step_fn, steps=o.steps, checkpoint=ckpt, checkpoint_every=o.checkpoint_every,
        progress=cfg.progress, on_log=on_log)
    train_s = before_s + time.perf_counter() - start
    nrt.surrogate.save_model(run.path("surrogate.eqx"), state.model, dtype=cfg.model.dtype)
    nrt.io.write_json(run.path("loss_curve.json"),
                      [{k: v for k, v in p.items() if k != "seconds"} for p in parts])
    val_metrics, _ = nrt.surrogate.evaluate.evaluate_dataset(state.model, val, fs=cfg.data.fs)
    with run.phase("held-out evaluation"):
        metrics = evaluate_and_plot(run, state.model, heldout, cfg.data)
    metrics |= {f"val_{k}": v for k, v in val_metrics.items() if not k.endswith("per_song")}
    metrics |= {"train_seconds": train_s, "steps": o.steps, "ablation": cfg.ablation,
                "loss_weights": dataclasses.asdict(weights), "final_loss": log.losses[-1]
                if log.losses else None, "n_parameters": n_params(state.model)}
    run.log({k: v for k, v in metrics.items() if isinstance(v, float)})
    return metrics


def n_params(model) -> int:
    import equinox as eqx

    return int(sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))))


if __name__ == "__main__":
    main()
