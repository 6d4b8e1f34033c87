"""Musicians vs non-musicians as ASHLE's learning rate and elasticity (two simulated groups).

Each simulated subject has a spontaneous rate drawn (with replacement) from the published
SMTs of their group (Scheurich et al. 2018) and parameters drawn log-normally:

  musicians:      lambda1 ~ exp(N(log m1_mus, s)),  lambda2 ~ exp(N(log m2_mus, s))
  non-musicians:  lambda1 ~ exp(N(log m1_non, s)),  lambda2 ~ exp(N(log m2_non, s))

(fast learning and low elasticity are musician-like; Roman et al. 2023). Every subject
taps with a metronome at each of the period ratios (default 0.70, 0.85, 1.15, 1.30 x SMT).
Per subject: PLV of the motor phase to the metronome over the second half of each trial,
and time to entrain (the first time after which a sliding PLV
stays >= `threshold`, window `window_s` seconds; a trial that never entrains counts as the trial length), each averaged
over the trials. Groups are compared with Welch's t-test, Cohen's d (pooled SD) and a
Mann-Whitney U test.

metrics.json fields: `n_per_group`, `plv_musicians`, `plv_nonmusicians` (group means),
`plv_sd_musicians`, `plv_sd_nonmusicians`, `plv_t`, `plv_p`, `plv_cohens_d`, `plv_mannwhitney_p`,
`entrain_s_musicians`, `entrain_s_nonmusicians`, `entrain_t`, `entrain_p`, `entrain_cohens_d`,
`never_entrained_musicians`, `never_entrained_nonmusicians` (fractions of trials),
`period_ratios`, `n_failed`, `duration_s`, `seed`.
"""

import dataclasses
import warnings

import jax.random as jr
import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scipy.stats

import nrtjax as nrt
import nrtjax.data as published
from experiments._ashle_protocol import as_batch, paced_summary
from experiments._job import BaseConfig, Run, check_range, job


@dataclasses.dataclass
class Config(BaseConfig):
    n_per_group: int = 50
    duration: float = 30.0
    period_ratios: list[float] = dataclasses.field(default_factory=lambda: [0.70, 0.85, 1.15, 1.30])
    lambda1_musician: float = 4.0
    lambda2_musician: float = 1.0
    lambda1_nonmusician: float = 1.0
    lambda2_nonmusician: float = 4.0
    log_sd: float = 0.3
    gamma: float = 0.02
    window_s: float = 1.0
    threshold: float = 0.95

    def __post_init__(self):
        check_range("n_per_group", self.n_per_group, low=2)
        check_range("duration", self.duration, low=4.0, high=600.0)
        for r in self.period_ratios:
            check_range("period_ratios[]", r, low=0.2, high=5.0)
        for k in ("lambda1_musician", "lambda2_musician", "lambda1_nonmusician", "lambda2_nonmusician"):
            check_range(k, getattr(self, k), low=0.0, low_open=True)
        check_range("log_sd", self.log_sd, low=0.0)
        check_range("gamma", self.gamma, low=0.0)
        check_range("window_s", self.window_s, low=0.05, high=self.duration / 2)
        check_range("threshold", self.threshold, low=0.0, high=1.0, low_open=True, high_open=True)


def draw_group(key, smts, n, m1, m2, sd):
    """SMT (s), lambda1, lambda2 for `n` subjects of one group."""
    k1, k2, k3 = jr.split(key, 3)
    smt = np.asarray(jr.choice(k1, np.asarray(smts) / 1000, (n,)))
    l1 = m1 * np.exp(sd * np.asarray(jr.normal(k2, (n,))))
    l2 = m2 * np.exp(sd * np.asarray(jr.normal(k3, (n,))))
    return smt, l1, l2


def compare(a, b) -> dict:
    """Welch t, p, Cohen's d (pooled SD) and Mann-Whitney p for two samples."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with warnings.catch_warnings():
        # A fully locked group has PLVs equal to within rounding; SciPy then warns about
        # precision loss in the variance, which is exactly 0 to the precision that matters.
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        t, p = scipy.stats.ttest_ind(a, b, equal_var=False)
    pooled = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    d = (np.mean(a) - np.mean(b)) / pooled if pooled > 0 else float("nan")
    u_p = scipy.stats.mannwhitneyu(a, b).pvalue if np.ptp(np.concatenate([a, b])) > 0 else 1.0
    return {"t": float(t), "p": float(p), "d": float(d), "u_p": float(u_p)}


def _figure(groups, path):
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    names = list(groups)
    for j, (key, label) in enumerate((("plv", "PLV to metronome"), ("entrain", "time to entrain (s)"))):
        data = [groups[g][key] for g in names]
        axes[j].boxplot(data, showfliers=False)
        axes[j].set_xticks([1, 2], names)
        for i, v in enumerate(data):
            axes[j].scatter(np.full(v.shape, i + 1) + 0.08 * np.random.default_rng(i).standard_normal(v.shape),
                            v, s=8, alpha=0.5)
        axes[j].set(ylabel=label)
    for g in names:
        sc = axes[2].scatter(groups[g]["l1"], groups[g]["l2"], c=groups[g]["plv"], vmin=0, vmax=1,
                             marker="o" if g == "musicians" else "^", s=14, label=g)
    axes[2].set(xscale="log", yscale="log", xlabel="lambda1 (learning)", ylabel="lambda2 (elasticity)")
    for axis in (axes[2].xaxis, axes[2].yaxis):
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[2].legend(fontsize=8)
    fig.colorbar(sc, ax=axes[2], label="PLV")
    nrt.io.save_figure(fig, path)


@job("musicians", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    k_mus, k_non = jr.split(run.key)
    spec = {"musicians": (k_mus, "musician", cfg.lambda1_musician, cfg.lambda2_musician),
            "non-musicians": (k_non, "nonmusician", cfg.lambda1_nonmusician, cfg.lambda2_nonmusician)}
    ratios = np.asarray(cfg.period_ratios)
    groups, n_failed, never = {}, 0, {}
    for name, (key, group, m1, m2) in spec.items():
        smt, l1, l2 = draw_group(key, published.scheurich2018_smt(group), cfg.n_per_group, m1, m2, cfg.log_sd)
        periods = smt[:, None] * ratios[None, :]
        f0, tempo, b1, b2, g = as_batch(1 / smt[:, None], 1 / periods, l1[:, None], l2[:, None], cfg.gamma)
        plv, t_e, _, ok = paced_summary(f0, tempo, b1, b2, g, duration=cfg.duration,
                                        window=cfg.window_s, threshold=cfg.threshold)
        plv = np.asarray(plv).reshape(periods.shape)
        t_e = np.asarray(t_e).reshape(periods.shape) * 1.0
        never[name] = float(np.mean(~np.isfinite(t_e)))
        t_e = np.where(np.isfinite(t_e), t_e, cfg.duration)
        n_failed += int((~np.asarray(ok)).sum())
        groups[name] = {"plv": plv.mean(1), "entrain": t_e.mean(1), "l1": l1, "l2": l2, "smt": smt}
    mus, non = groups["musicians"], groups["non-musicians"]
    cp, ce = compare(mus["plv"], non["plv"]), compare(mus["entrain"], non["entrain"])
    metrics = {
        "n_per_group": cfg.n_per_group, "period_ratios": ratios,
        "plv_musicians": float(mus["plv"].mean()), "plv_nonmusicians": float(non["plv"].mean()),
        "plv_sd_musicians": float(mus["plv"].std(ddof=1)), "plv_sd_nonmusicians": float(non["plv"].std(ddof=1)),
        "plv_t": cp["t"], "plv_p": cp["p"], "plv_cohens_d": cp["d"], "plv_mannwhitney_p": cp["u_p"],
        "entrain_s_musicians": float(mus["entrain"].mean()),
        "entrain_s_nonmusicians": float(non["entrain"].mean()),
        "entrain_t": ce["t"], "entrain_p": ce["p"], "entrain_cohens_d": ce["d"],
        "never_entrained_musicians": never["musicians"],
        "never_entrained_nonmusicians": never["non-musicians"],
        "n_failed": n_failed, "duration_s": cfg.duration, "seed": cfg.seed,
    }
    for name, g in groups.items():
        nrt.io.write_columns(run.path(f"subjects_{name}.csv"), {
            "smt_ms": g["smt"] * 1000, "lambda1": g["l1"], "lambda2": g["l2"],
            "plv": g["plv"], "time_to_entrain_s": g["entrain"]})
    _figure(groups, run.path("musicians.png"))
    run.log({k: v for k, v in metrics.items() if np.ndim(v) == 0})
    return metrics


if __name__ == "__main__":
    main()
