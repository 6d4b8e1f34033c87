"""ASHLE mean asynchrony vs metronome rate (Scheurich et al. 2018 protocol, musicians).

For each musician's published spontaneous rate (SMT), ASHLE (reference setting, forward
Euler at 500 Hz) taps along a metronome with period 1.00, 0.70, 0.85, 1.15 and 1.30 x SMT.
Mean asynchrony = mean(tap - nearest onset) over the second half of the trial; it is
reported relative to the 1.00 x SMT condition, averaged over subjects (mean, SE), against
the published human means.

metrics.json fields: `period_ratios`, `model_async_ms` and `model_se_ms` (per ratio),
`human_async_ms`, `human_se_ms`, `rmse_ms`, `pearson_r`, `sign_agreement` (number of ratios
whose sign matches), `sync_async_ms` (absolute asynchrony at SMT, mean over subjects),
`min_plv` (lowest second-half PLV to the metronome over all runs), `n_subjects`, `smt_ms`,
`n_failed`, `duration_s`, `seed`.
"""

import dataclasses

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import nrtjax as nrt
import nrtjax.data as published
from experiments._ashle_protocol import FS, as_batch, paced
from experiments._job import BaseConfig, Run, check_range, job


@dataclasses.dataclass
class Config(BaseConfig):
    n_subjects: int = 0          # 0 = all 20 published musicians' SMTs; k = the first k
    duration: float = 50.0
    lambda1: float = 4.0
    lambda2: float = 2.0
    gamma: float = 0.02

    def __post_init__(self):
        check_range("n_subjects", self.n_subjects, low=0, high=20)
        check_range("duration", self.duration, low=4.0, high=600.0)
        check_range("lambda1", self.lambda1, low=0.0)
        check_range("lambda2", self.lambda2, low=0.0)
        check_range("gamma", self.gamma, low=0.0)


def subject_asynchronies(ts, z, periods, t_min) -> np.ndarray:
    """Mean asynchrony (s) of each run: taps at t >= t_min against the metronome onsets."""
    out = np.empty(z.shape[0])
    for i in range(z.shape[0]):
        taps = nrt.analysis.tap_times(ts, z[i])
        onsets = nrt.analysis.metronome_onsets(float(periods[i]), float(ts[-1]) + periods[i])
        out[i] = nrt.analysis.mean_asynchrony(taps, onsets, t_min=t_min)
    return out


def _figure(ratios, human, human_se, model, model_se, path):
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    x = np.arange(len(ratios))
    ax.bar(x - 0.2, human, 0.4, yerr=human_se, color="0.7", edgecolor="k", label="musicians (Scheurich et al. 2018)")
    ax.bar(x + 0.2, model, 0.4, yerr=model_se, color="tab:blue", edgecolor="k", label="ASHLE (this run)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [f"{r:.2f} x SMT" for r in ratios])
    ax.set(ylabel="mean asynchrony re SMT condition (ms)", title="Asynchrony vs metronome period")
    ax.legend(fontsize=8)
    nrt.io.save_figure(fig, path)


@job("ashle_asynchrony", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    table = published.scheurich2018_asynchrony()
    ratios = np.asarray(table["period_ratio"])
    smt = published.scheurich2018_smt("musician") / 1000.0
    if cfg.n_subjects:
        smt = smt[: cfg.n_subjects]
    all_ratios = np.concatenate([[1.0], ratios])
    periods = smt[:, None] * all_ratios[None, :]
    f0, tempo, l1, l2, g = as_batch(1.0 / smt[:, None], 1.0 / periods, cfg.lambda1, cfg.lambda2, cfg.gamma)
    ts, z, _, ok = paced(f0, tempo, l1, l2, g, duration=cfg.duration, fs=FS)
    ts, z, ok = np.asarray(ts), np.asarray(z), np.asarray(ok)
    half = ts.shape[0] // 2
    phase_s = 2 * np.pi * np.asarray(tempo)[:, None] * ts[None, half:]
    plv = np.asarray(nrt.plv(jnp.angle(jnp.asarray(z[:, half:])), jnp.asarray(phase_s)))
    asy = subject_asynchronies(ts, z, periods.reshape(-1), ts[half]).reshape(periods.shape) * 1000
    rel = asy[:, 1:] - asy[:, :1]
    model = rel.mean(0)
    model_se = rel.std(0, ddof=1) / np.sqrt(rel.shape[0]) if rel.shape[0] > 1 else np.zeros_like(model)
    human, human_se = np.asarray(table["mean_async_ms"]), np.asarray(table["se_ms"])
    metrics = {
        "period_ratios": ratios, "model_async_ms": model, "model_se_ms": model_se,
        "human_async_ms": human, "human_se_ms": human_se,
        "rmse_ms": float(np.sqrt(np.mean((model - human) ** 2))),
        "pearson_r": float(np.corrcoef(model, human)[0, 1]),
        "sign_agreement": int(np.sum(np.sign(model) == np.sign(human))),
        "sync_async_ms": float(asy[:, 0].mean()), "min_plv": float(plv.min()),
        "n_subjects": int(smt.shape[0]), "smt_ms": smt * 1000, "n_failed": int((~ok).sum()),
        "duration_s": cfg.duration, "seed": cfg.seed,
    }
    nrt.io.write_columns(run.path("asynchrony_per_subject.csv"), {
        "smt_ms": smt * 1000, **{f"async_ms_{r:.2f}": asy[:, i] for i, r in enumerate(all_ratios)}})
    _figure(ratios, human, human_se, model, model_se, run.path("ashle_asynchrony.png"))
    run.log({k: v for k, v in metrics.items() if np.ndim(v) == 0})
    return metrics


if __name__ == "__main__":
    main()
