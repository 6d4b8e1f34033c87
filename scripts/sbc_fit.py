"""Simulation-based calibration (Talts et al. 2018) of `nrtjax fit method=nuts`.

Each replicate draws (lambda1, lambda2) from the prior the sampler uses (log-uniform on
`--lambda1` and `--lambda2`), an SMT (uniform 300-700 ms) and a tap jitter (log-uniform on
`--jitter-ms`); integrates ASHLE with the independent NumPy reference of the recovery study
(`nrtjax.fitting.synthetic`, RK4 at 2 kHz, taps = peaks of Re z plus Gaussian jitter); fits it
as `nrtjax fit method=nuts` does (global design and LM, then NUTS from the LM optimum with
the Laplace mass matrix, the replicates and chains vmapped); and ranks each true value among
`--keep` draws thinned evenly from the chains. If the posterior is calibrated the ranks are
uniform on 0..keep: the script reports a chi-square test on `--bins` bins and a
Kolmogorov-Smirnov test on the fractional ranks (rank + U(0, 1)) / (keep + 1), and draws the
rank histograms with the 99 % band of a bin's count under uniformity.

    python scripts/sbc_fit.py --replicates 32 --out outputs/sbc_fit

The likelihood integrates the residual scale out under p(sigma) ~ 1/sigma, while the
replicates draw the jitter from a log-uniform range: with ~100 taps per replicate the
posterior of sigma is narrow, so the difference is a small approximation, stated here.
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import jax
import jax.random as jr
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import nrtjax as nrt
from nrtjax.fitting import data as fitdata, losses, posterior, synthetic

NAMES = ("lambda1", "lambda2")


def replicates(n: int, args, rng: np.random.Generator) -> list[dict]:
    lo = np.log([args.lambda1[0], args.lambda2[0]])
    hi = np.log([args.lambda1[1], args.lambda2[1]])
    out = []
    for i in range(n):
        l1, l2 = np.exp(lo + (hi - lo) * rng.uniform(size=2))
        smt = round(float(rng.uniform(300, 700)), 1)
        jitter = float(np.exp(rng.uniform(*np.log(args.jitter_ms))))
        ratios = np.sort(rng.uniform(0.7, 1.3, args.rates))
        out.append({"subject": f"r{i:03d}", "lambda1": float(l1), "lambda2": float(l2),
                    "smt_ms": smt, "jitter_ms": jitter, "start_s": 0.0,
                    "periods_ms": [round(float(r * smt), 1) for r in ratios]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="outputs/sbc_fit")
    parser.add_argument("--lambda1", type=float, nargs=2, default=[1.0, 10.0])
    parser.add_argument("--lambda2", type=float, nargs=2, default=[0.5, 4.0])
    parser.add_argument("--jitter-ms", type=float, nargs=2, default=[2.0, 5.0])
    parser.add_argument("--rates", type=int, default=2)
    parser.add_argument("--trial-s", type=float, default=8.0)
    parser.add_argument("--starts", type=int, default=32)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=4)
    parser.add_argument("--keep", type=int, default=39, help="draws ranked per replicate")
    parser.add_argument("--bins", type=int, default=4)
    args = parser.parse_args()
    if args.keep > args.chains * args.samples:
        parser.error("--keep cannot exceed chains x samples")
    jax.config.update("jax_enable_x64", True)
    warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.time(), time.process_time()

    rng = np.random.default_rng(args.seed)
    truth = replicates(args.replicates, args, rng)
    cohort = synthetic.simulate_cohort(truth, duration=args.trial_s, fs=2000.0,
                                       seed=args.seed + 1)
    synthetic.write_taps_csv(out / "sbc_taps.csv", cohort)
    taps = fitdata.read_taps(out / "sbc_taps.csv")
    assert taps.subjects == [t["subject"] for t in truth]
    res = losses.TapResiduals(duration=float(np.ceil(args.trial_s + 1.0)), fs=125.0,
                              solver=nrt.RK4())
    ranges = {"lambda1": tuple(args.lambda1), "lambda2": tuple(args.lambda2)}
    template = nrt.ASHLE()
    key_fit, key_post = jr.split(jr.key(args.seed))
    print(f"sbc_fit: LM fits of {len(truth)} replicates")
    fit = nrt.fit(template, res, taps.data, params=NAMES, key=key_fit, starts=args.starts,
                  start_ranges=ranges, restarts=2, method="lm", steps=30, patience=3)

    prior = posterior.LogUniformBox(ranges, NAMES)
    print(f"sbc_fit: NUTS, {args.chains} chains x ({args.warmup} + {args.samples}) per replicate")
    draws = posterior.sample_fits(template, res, taps.data, fit, prior, key_post,
                                  warmup=args.warmup, samples=args.samples, chains=args.chains,
                                  max_depth=args.max_depth)
    draws = {k: np.asarray(v) for k, v in draws.items()}
    theta = draws["theta"]  # (replicates, chains, samples, p)
    flat = theta.reshape(len(truth), -1, len(NAMES))
    pick = np.linspace(0, flat.shape[1] - 1, args.keep).round().astype(int)
    true = np.array([[t[p] for p in NAMES] for t in truth])
    ranks = (flat[:, pick, :] < true[:, None, :]).sum(axis=1)  # 0..keep
    u01 = (ranks + rng.uniform(size=ranks.shape)) / (args.keep + 1)

    rows, summary = [], {"replicates": len(truth), "keep": args.keep, "bins": args.bins,
                         "args": vars(args)}
    for i, t in enumerate(truth):
        summ = posterior.summarise(theta[i], NAMES)
        rows.append([t["subject"], t["smt_ms"], round(t["jitter_ms"], 3),
                     *[v for j, p in enumerate(NAMES) for v in (
                         t[p], float(fit.params[i, j]), summ[j]["median"], summ[j]["ci_low"],
                         summ[j]["ci_high"], summ[j]["rhat"], summ[j]["ess"],
                         int(ranks[i, j]))],
                     int(draws["divergent"][i].sum())])
    header = ["replicate", "smt_ms", "jitter_ms",
              *[f"{p}_{c}" for p in NAMES for c in ("true", "lm", "median", "ci_low",
                                                     "ci_high", "rhat", "ess", "rank")],
              "divergences"]
    nrt.io.write_csv(out / "sbc_ranks.csv", header, rows)

    fig, axes = plt.subplots(1, len(NAMES), figsize=(4.2 * len(NAMES), 3.2),
                             constrained_layout=True)
    n = len(truth)
    lo99, hi99 = stats.binom.ppf([0.005, 0.995], n, 1 / args.bins)
    for j, p in enumerate(NAMES):
        counts = np.histogram(u01[:, j], bins=args.bins, range=(0, 1))[0]
        chi = stats.chisquare(counts)
        ks = stats.kstest(u01[:, j], "uniform")
        inside = np.mean([(true[i, j] >= rows[i][3 + 8 * j + 3])
                          & (true[i, j] <= rows[i][3 + 8 * j + 4]) for i in range(n)])
        summary[p] = {"counts": counts.tolist(), "chi2": float(chi.statistic),
                      "chi2_p": float(chi.pvalue), "ks": float(ks.statistic),
                      "ks_p": float(ks.pvalue), "coverage_95": float(inside)}
        ax = axes[j]
        ax.axhspan(lo99, hi99, color="0.85", label="99 % band, uniform")
        ax.axhline(n / args.bins, color="0.5", lw=0.8)
        ax.bar((np.arange(args.bins) + 0.5) / args.bins, counts, width=0.9 / args.bins,
               color="C0")
        ax.set(xlabel=f"rank of true {p} / ({args.keep} + 1)", ylabel="replicates",
               title=f"{p}: chi2 p = {chi.pvalue:.2f}, KS p = {ks.pvalue:.2f}")
        ax.title.set_fontsize(9)
    axes[0].legend(fontsize=7)
    nrt.io.save_figure(fig, out / "sbc_ranks.png")
    summary.update({"max_rhat": float(np.nanmax([[r[3 + 8 * j + 5] for j in range(2)]
                                                 for r in rows])),
                    "min_ess": float(np.nanmin([[r[3 + 8 * j + 6] for j in range(2)]
                                                for r in rows])),
                    "divergences": int(draws["divergent"].sum()),
                    "accept_mean": float(draws["accept"].mean()),
                    "wall_s": time.time() - t0, "cpu_s": time.process_time() - c0})
    nrt.io.write_json(out / "sbc_summary.json", summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "args"}, indent=1))


if __name__ == "__main__":
    main()
