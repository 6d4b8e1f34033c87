"""ASHLE tempo drift in unpaced performance (Zamm et al. 2018 continuation protocol).

Each of the 24 published pianists is simulated five times with ASHLE (no stimulus, forward
Euler at 500 Hz): spontaneous rate f0 = 1000 / SPR and both oscillator frequencies starting
at the pianist's SPR or one of the four cued rates (faster, fast, slow, slower). The IOI
drift is the least-squares slope of the first `max_intervals` inter-tap intervals against
their index (ms per IOI); the adjusted slope is a cued condition's slope minus the SPR
condition's slope, averaged over pianists (mean, SE), against the published means.

metrics.json fields: `conditions`, `model_slope_ms_per_ioi`, `model_se_ms_per_ioi`,
`human_slope_ms_per_ioi`, `human_se_ms_per_ioi`, `pearson_r`, `sign_agreement`,
`spr_slope_ms_per_ioi` (unadjusted slope at SPR, mean), `n_subjects`, `n_failed`,
`n_short` (runs with fewer taps than `max_intervals` + 1), `duration_s`, `seed`.
"""

import dataclasses

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import nrtjax as nrt
import nrtjax.data as published
from experiments._ashle_protocol import FS, as_batch, unpaced
from experiments._job import BaseConfig, Run, check_range, job

CONDITIONS = ("faster", "fast", "slow", "slower")


@dataclasses.dataclass
class Config(BaseConfig):
    n_subjects: int = 0          # 0 = all 24 published pianists; k = the first k
    duration: float = 150.0
    max_intervals: int = 128
    lambda1: float = 4.0
    lambda2: float = 2.0
    gamma: float = 0.02

    def __post_init__(self):
        check_range("n_subjects", self.n_subjects, low=0, high=24)
        check_range("duration", self.duration, low=4.0, high=1200.0)
        check_range("max_intervals", self.max_intervals, low=3)
        check_range("lambda1", self.lambda1, low=0.0)
        check_range("lambda2", self.lambda2, low=0.0)
        check_range("gamma", self.gamma, low=0.0)


def _figure(human, human_se, model, model_se, per_subject, path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    x = np.arange(len(CONDITIONS))
    ax = axes[0]
    ax.bar(x - 0.2, human, 0.4, yerr=human_se, color="0.7", edgecolor="k", label="pianists (Zamm et al. 2018)")
    ax.bar(x + 0.2, model, 0.4, yerr=model_se, color="tab:blue", edgecolor="k", label="ASHLE (this run)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, CONDITIONS)
    ax.set(ylabel="adjusted IOI slope (ms per IOI)", title="Tempo drift, unpaced performance")
    ax.legend(fontsize=8)
    axes[1].plot(x, per_subject.T, color="tab:blue", alpha=0.3)
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_xticks(x, CONDITIONS)
    axes[1].set(ylabel="adjusted slope (ms per IOI)", title="ASHLE, per pianist")
    nrt.io.save_figure(fig, path)


@job("ashle_drift", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    rates = published.zamm2018_rates()
    drift = published.zamm2018_drift()
    n = cfg.n_subjects or rates["spr_ms"].shape[0]
    iois = np.stack([rates["spr_ms"]] + [rates[f"{c}_ms"] for c in CONDITIONS], axis=1)[:n] / 1000
    spr = iois[:, :1]
    f0, f_start, l1, l2, g = as_batch(1.0 / spr, 1.0 / iois, cfg.lambda1, cfg.lambda2, cfg.gamma)
    ts, z, _, ok = unpaced(f0, f_start, l1, l2, g, duration=cfg.duration, fs=FS)
    ts, z, ok = np.asarray(ts), np.asarray(z), np.asarray(ok)
    slopes = np.empty(z.shape[0])
    n_short = 0
    for i in range(z.shape[0]):
        taps = nrt.analysis.tap_times(ts, z[i])
        n_short += int(taps.size < cfg.max_intervals + 1)
        slopes[i] = nrt.analysis.iti_drift(taps, max_intervals=cfg.max_intervals) * 1000
    slopes = slopes.reshape(iois.shape)
    adjusted = slopes[:, 1:] - slopes[:, :1]
    model = adjusted.mean(0)
    model_se = adjusted.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(model)
    human, human_se = drift["mean_slope_ms_per_ioi"], drift["se_ms_per_ioi"]
    metrics = {
        "conditions": list(CONDITIONS), "model_slope_ms_per_ioi": model,
        "model_se_ms_per_ioi": model_se, "human_slope_ms_per_ioi": human,
        "human_se_ms_per_ioi": human_se, "pearson_r": float(np.corrcoef(model, human)[0, 1]),
        "sign_agreement": int(np.sum(np.sign(model) == np.sign(human))),
        "spr_slope_ms_per_ioi": float(slopes[:, 0].mean()), "n_subjects": int(n),
        "n_failed": int((~ok).sum()), "n_short": n_short, "duration_s": cfg.duration,
        "seed": cfg.seed,
    }
    nrt.io.write_columns(run.path("drift_per_subject.csv"), {
        "spr_ms": spr[:, 0] * 1000, "slope_spr": slopes[:, 0],
        **{f"adjusted_slope_{c}": adjusted[:, i] for i, c in enumerate(CONDITIONS)}})
    _figure(human, human_se, model, model_se, adjusted, run.path("ashle_drift.png"))
    run.log({k: v for k, v in metrics.items() if np.ndim(v) == 0 and not isinstance(v, str)})
    return metrics


if __name__ == "__main__":
    main()
