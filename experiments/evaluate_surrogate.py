"""Evaluate a surrogate checkpoint on held-out songs (section-7 metrics and figure)."""

import dataclasses

import jax

# Ground truth is integrated in float64, as in train_surrogate.
jax.config.update("jax_enable_x64", True)

import jax.random as jr  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")

import nrtjax as nrt  # noqa: E402
from experiments._job import BaseConfig, Run, input_path, job  # noqa: E402
from experiments._surrogate import DataConfig, data_keys, evaluate_and_plot, heldout_data  # noqa: E402


@dataclasses.dataclass
class Config(BaseConfig):
    checkpoint: str | None = input_path(suffixes=(".eqx",), companion=".json",
                                        hint="Train one with `nrtjax train_surrogate`.")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)


@job("evaluate_surrogate", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    model = nrt.surrogate.load(cfg.checkpoint)
    # The same key branch as train_surrogate's held-out set for the same seed.
    k_data = jr.split(run.key, 3)[0]
    with run.phase("held-out songs and their ASHLE ground truth"):
        data = heldout_data(cfg.data, key=data_keys(k_data)[1])
    with run.phase("evaluating"):
        metrics = evaluate_and_plot(run, model, data, cfg.data)
    metrics["checkpoint"] = cfg.checkpoint or "shipped"
    return metrics


if __name__ == "__main__":
    main()
