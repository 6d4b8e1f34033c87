"""Consonance as dynamical stability: n:m mode locking of the 12 just intervals vs a ranking.

The 12 intervals from the minor second to the octave in just intonation (Helmholtz's ratios,
as tabulated by Shapira Lots & Stone 2008) are each tested as an n:m resonance of a canonical
oscillator (all-harmonics input, self-sustained) driven at the lower tone:
[`nrtjax.analysis.modelocking.mode_locking`][] runs a bank of oscillators detuned around
(u/l) f_x and measures which detunings lock (no slip of the u:l relative phase over the
second half). The stability of an interval is its locking width (total relative detuning
that locks). The parameter-free alternative is the order u + l - 2 of the resonant monomial.

Stability is correlated with two published rankings: Helmholtz's (12 intervals; via Shapira
Lots & Stone 2008, Table 1) and Bones & Plack (2015, Table 1; 11 dyads, no octave). We
report Spearman's rho (ranks; ties averaged) and Pearson's r between the locking width and
the consonance score (n + 1 - rank, so that larger = more consonant), with p-values.

metrics.json fields: `intervals`, `ratios`, `locking_width` (per interval), `order`,
`helmholtz_rank`, `spearman_rho_helmholtz`, `spearman_p_helmholtz`, `pearson_r_helmholtz`,
`pearson_p_helmholtz`, `order_spearman_rho_helmholtz` (of -order), `spearman_rho_bones2015`,
`spearman_p_bones2015`, `pearson_r_bones2015`, `width_floor` (detuning grid step: widths at
or below it are unresolved), `n_detunings`, `duration_s`, `seed`.
"""

import dataclasses

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scipy.stats

import nrtjax as nrt
import nrtjax.data as published
from experiments._job import BaseConfig, Run, check_range, job
from nrtjax.analysis import modelocking


@dataclasses.dataclass
class Config(BaseConfig):
    amplitude: float = 0.3
    eps: float = 1.0
    alpha: float = 1.0
    beta1: float = -1.0
    beta2: float = -1.0
    stim_hz: float = 1.0
    max_detuning: float = 0.12
    n_detunings: int = 241
    duration: float = 200.0
    fs: float = 64.0

    def __post_init__(self):
        check_range("amplitude", self.amplitude, low=0.0, low_open=True)
        check_range("eps", self.eps, low=0.0, high=1.0, low_open=True)
        check_range("alpha", self.alpha, low=0.0, low_open=True)
        check_range("stim_hz", self.stim_hz, low=0.0, low_open=True)
        check_range("max_detuning", self.max_detuning, low=0.0, high=0.5, low_open=True)
        check_range("n_detunings", self.n_detunings, low=3)
        check_range("duration", self.duration, low=4.0)
        check_range("fs", self.fs, low=16 * self.stim_hz)
        if np.sqrt(self.eps) * self.amplitude >= 1:
            from experiments._job import ConfigError
            raise ConfigError(f"sqrt(eps) * amplitude = {np.sqrt(self.eps) * self.amplitude:.3g} "
                              "must be < 1; lower amplitude or eps.")


def correlate(stability: np.ndarray, rank: np.ndarray) -> dict:
    """Spearman and Pearson correlations of stability with the consonance score n+1-rank
    (NaN when every stability is equal, e.g. nothing resolved on a coarse grid)."""
    score = rank.size + 1 - rank
    if np.ptp(stability) == 0:
        nan = float("nan")
        return {"rho": nan, "p_rho": nan, "r": nan, "p_r": nan}
    rho, p_rho = scipy.stats.spearmanr(stability, score)
    r, p_r = scipy.stats.pearsonr(stability, score)
    return {"rho": float(rho), "p_rho": float(p_rho), "r": float(r), "p_r": float(p_r)}


def _figure(names, width, order, rank, det, slip, floor, path):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    axes[0].imshow(np.abs(slip) < 0.5, aspect="auto", cmap="Greys", interpolation="nearest",
                   extent=[100 * det[0], 100 * det[-1], len(names) - 0.5, -0.5])
    axes[0].set_yticks(range(len(names)), names)
    axes[0].set(xlabel="detuning (%)", title="locked (black): no u:l phase slip")
    axes[1].scatter(rank, np.maximum(width, floor / 2), c="k")
    for n, x, y in zip(names, rank, np.maximum(width, floor / 2)):
        axes[1].annotate(n, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
    axes[1].axhline(floor, color="tab:red", ls=":", lw=1, label="resolution")
    axes[1].set(yscale="log", xlabel="Helmholtz consonance rank", ylabel="locking width (rel.)")
    axes[1].legend(fontsize=8)
    axes[2].scatter(rank, order, c="k")
    axes[2].set(xlabel="Helmholtz consonance rank", ylabel="resonance order u + l - 2")
    nrt.io.save_figure(fig, path)


@job("consonance", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    table = published.consonance_ranking("helmholtz")
    keep = table["abbrev"] != "P1"
    names = table["abbrev"][keep]
    upper, lower = table["upper"][keep].astype(int), table["lower"][keep].astype(int)
    rank = table["rank"][keep] - 1  # 1 = octave ... 12 = tritone once the unison is dropped
    det = np.linspace(-cfg.max_detuning, cfg.max_detuning, cfg.n_detunings)
    plv, slip = modelocking.mode_locking(
        upper, lower, det, stim_hz=cfg.stim_hz, amplitude=cfg.amplitude, alpha=cfg.alpha,
        beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.eps, duration=cfg.duration, fs=cfg.fs)
    width = modelocking.locking_widths(slip, det)
    order = modelocking.resonance_order(upper, lower)
    helm = correlate(width, rank)
    rho_order = float(scipy.stats.spearmanr(-order, rank.size + 1 - rank)[0])
    bones = published.consonance_ranking("bones2015")
    idx = np.asarray([list(names).index(a) for a in bones["abbrev"]])
    bon = correlate(width[idx], bones["rank"])
    metrics = {
        "intervals": list(names), "ratios": [f"{u}:{d}" for u, d in zip(upper, lower)],
        "locking_width": width, "order": order, "helmholtz_rank": rank,
        "spearman_rho_helmholtz": helm["rho"], "spearman_p_helmholtz": helm["p_rho"],
        "pearson_r_helmholtz": helm["r"], "pearson_p_helmholtz": helm["p_r"],
        "order_spearman_rho_helmholtz": rho_order,
        "spearman_rho_bones2015": bon["rho"], "spearman_p_bones2015": bon["p_rho"],
        "pearson_r_bones2015": bon["r"], "width_floor": float(det[1] - det[0]),
        "n_detunings": cfg.n_detunings, "duration_s": cfg.duration, "seed": cfg.seed,
    }
    nrt.io.write_columns(run.path("consonance.csv"), {
        "interval": names, "upper": upper, "lower": lower, "helmholtz_rank": rank,
        "locking_width": width, "order": order, "max_plv": plv.max(1)})
    _figure(names, width, order, rank, det, slip, float(det[1] - det[0]), run.path("consonance.png"))
    run.log({k: v for k, v in metrics.items() if np.ndim(v) == 0})
    return metrics


if __name__ == "__main__":
    main()
