"""Fit ASHLE to subject tapping data by gradient (taps=PATH or summary=PATH, out=DIR)."""

import dataclasses
import warnings
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import nrtjax as nrt
from experiments._job import (BaseConfig, ConfigError, Run, check_choice, check_range,
                             input_path, job)
from nrtjax.fitting import data as fitdata, identifiability, losses, posterior, profile

COLUMNS = ("lambda1", "lambda2", "gamma")
RATIO_NOTE = (
    "Steady-state asynchronies depend on lambda1 and lambda2 only through lambda2/lambda1 "
    "(in the 1:1 steady state f' = 0 gives lambda1 sin(phase lag) = lambda2 (exp((f-f0)/f0) "
    "- 1)). Summary data therefore identify the ratio, not the pair: lambda1 is held at "
    "{l1:g} and only lambda2 (i.e. the ratio lambda2/lambda1) is fitted. The Hessian in "
    "(lambda1, lambda2) at the fit is reported under 'pair_check'.")


@dataclasses.dataclass
class FitSettings:
    """How `nrtjax fit` fits (shared with `nrtjax fit_recovery`, which fits the same way)."""

    params: list[str] = dataclasses.field(default_factory=lambda: ["lambda1", "lambda2"])
    lambda1: float = 4.0
    lambda2: float = 2.0
    gamma: float = 0.02
    # Global fit: `starts` Sobol points over `start_ranges`, the `restarts` best refined
    # by `method` (lm: Levenberg-Marquardt; adam: optax Adam at `learning_rate`; nuts:
    # the LM fit, then posterior samples by NUTS, the prior log-uniform on start_ranges).
    starts: int = 256
    start_ranges: dict[str, list[float]] = dataclasses.field(default_factory=lambda: {
        "lambda1": [0.5, 20.0], "lambda2": [0.25, 8.0], "gamma": [0.002, 0.2]})
    method: str = "lm"
    restarts: int = 3
    steps: int = 30
    patience: int = 3
    learning_rate: float = 0.05
    # The model: classical RK4 at `fs` steps per second (125 Hz is within 0.1 ms of a
    # 2 kHz integration for tempi down to 200 ms), taps read as peaks of Re z.
    fs: float = 125.0
    integrator: str = "rk4"  # not `solver`: Hydra reads `solver=` as the conf/solver group
    readout: str = "peak"
    duration: float | None = None
    window: float = 10.0
    # Identifiability: a parameter is identified when its `profile_level` profile-likelihood
    # interval (Lambda below the chi-squared_1 quantile: 10.83 for 0.999, 3.841 for 0.95)
    # lies within a factor `profile_factor` of the estimate. 0.999 per parameter: over a
    # cohort of ~100 identified parameters about 0.1 wrong ones escape the flag.
    profile_factor: float = 1.2
    profile_level: float = 0.999
    # method=nuts: chains per subject (from the LM optimum), window-adaptation steps, draws
    # kept per chain, the tree-depth cap, and the central credible interval reported.
    nuts_chains: int = 4
    nuts_warmup: int = 300
    nuts_samples: int = 500
    nuts_max_depth: int = 8
    credible: float = 0.95

    def check_fit(self):
        for name in ("lambda1", "lambda2", "gamma", "learning_rate", "fs", "window"):
            check_range(name, getattr(self, name), low=0.0, low_open=True)
        check_range("restarts", self.restarts, low=1, high=256)
        check_range("starts", self.starts, low=0, high=65536)
        if self.starts and self.restarts > self.starts:
            raise ConfigError(f"restarts={self.restarts} cannot exceed starts={self.starts}.")
        check_choice("method", self.method, ("lm", "adam", "nuts"))
        check_range("nuts_chains", self.nuts_chains, low=2, high=64,
                    hint="R-hat needs at least 2 chains.")
        check_range("nuts_warmup", self.nuts_warmup, low=10, high=100000)
        check_range("nuts_samples", self.nuts_samples, low=10, high=100000)
        check_range("nuts_max_depth", self.nuts_max_depth, low=1, high=12)
        check_range("credible", self.credible, low=0.0, low_open=True, high=1.0,
                    high_open=True, hint="a probability, e.g. 0.95.")
        check_choice("integrator", self.integrator, ("rk4", "euler"))
        check_choice("readout", self.readout, ("peak", "phase"))
        check_range("profile_factor", self.profile_factor, low=1.0, low_open=True, high=10.0)
        check_range("profile_level", self.profile_level, low=0.0, low_open=True, high=1.0,
                    high_open=True, hint="a probability, e.g. 0.999 or 0.95.")
        for name in self.params:
            rng = self.start_ranges.get(name)
            if rng is None or len(rng) != 2 or not 0 < rng[0] < rng[1]:
                raise ConfigError(f"start_ranges.{name}={rng} must be [low, high] with "
                                  "0 < low < high.")
        check_range("steps", self.steps, low=1)
        check_range("patience", self.patience, low=1)
        if self.duration is not None:
            check_range("duration", self.duration, low=1.0)
            check_range("window", self.window, high=self.duration, high_open=True)
        bad = [p for p in self.params if p not in COLUMNS]
        if bad or not self.params or len(set(self.params)) != len(self.params):
            raise ConfigError(f"params={self.params} must be distinct names among {COLUMNS}.")


@dataclasses.dataclass
class Config(FitSettings, BaseConfig):
    taps: str | None = input_path()
    summary: str | None = input_path()
    out: str | None = None

    def __post_init__(self):
        if (self.taps is None) == (self.summary is None):
            raise ConfigError("give exactly one of taps=PATH or summary=PATH.")
        self.check_fit()
        if self.method == "nuts" and self.summary is not None:
            raise ConfigError("method=nuts samples tap data: give taps=PATH (summary data "
                              "identify only lambda2/lambda1).")


def _fit(cfg: FitSettings, residuals, data, params, key):
    method = "lm" if cfg.method == "nuts" else cfg.method  # nuts starts at the LM optimum
    template = nrt.ASHLE(lambda1=cfg.lambda1, lambda2=cfg.lambda2, gamma=cfg.gamma)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
        return nrt.fit(template, residuals, data, params=params, key=key,
                       restarts=min(cfg.restarts, cfg.starts) if cfg.starts else cfg.restarts,
                       steps=cfg.steps, patience=cfg.patience,
                       learning_rate=cfg.learning_rate, method=method, starts=cfg.starts,
                       start_ranges={p: tuple(cfg.start_ranges[p]) for p in params}), template


def solver_of(name: str):
    return nrt.RK4() if name == "rk4" else diffrax.Euler()


def diagnostics(result, prof=None) -> dict[str, np.ndarray]:
    """Per-subject convergence and identifiability columns for fitted_params.csv (the
    latter only with a profile `prof`)."""
    cols = {"converged": result.converged(), "plateau": np.asarray(result.plateau),
            "newton_step": np.asarray(result.newton_step),
            "grad_norm": np.asarray(result.grad_norm),
            "n_at_best": np.asarray(result.n_at_best),
            "restarts": np.full(result.params.shape[0], result.restart_loss.shape[1]),
            "steps_run": np.asarray(result.steps_run)}
    for j, name in enumerate(result.names if prof is not None else ()):
        cols[f"{name}_identified"] = prof["identified"][:, j]
        cols[f"{name}_lr_low"] = prof["lr_low"][:, j]
        cols[f"{name}_lr_high"] = prof["lr_high"][:, j]
    return cols


def _write_params(path, subjects, result, template, extra=None):
    fitted = list(result.names)
    header = ["subject", *COLUMNS, "loss", *[f"{p}_se" for p in fitted], *(extra or {})]
    rows = []
    for i, s in enumerate(subjects):
        m = result.model(template, i)
        row = [s, *[float(getattr(m, c)) for c in COLUMNS], float(result.loss[i]),
               *[float(v) for v in result.se[i]]]
        rows.append(row + [_cell(v[i]) for v in (extra or {}).values()])
    nrt.io.write_csv(path, header, rows)


def _cell(v):
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return int(v)
    return float(v)


def _loss_curves(out: Path, subjects, result):
    hist = np.asarray(result.history)
    nrt.io.write_columns(out / "loss_curves.csv", {
        "step": np.arange(hist.shape[1]), **{f"loss_{s}": hist[i] for i, s in enumerate(subjects)}})
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for i, s in enumerate(subjects):
        ax.semilogy(hist[i], label=str(s))
    ax.set(xlabel="optimisation step", ylabel="loss (ms$^2$)", title="loss, best restart")
    if len(subjects) <= 12:
        ax.legend(fontsize=7)
    nrt.io.save_figure(fig, out / "loss_curves.png")


# The figures' and metrics' model runs, compiled once per job: op by op, each of the
# simulation's operations would compile apart (tens of them, ~0.05 s each).
_residuals = eqx.filter_jit(lambda res, model, datum: res(model, datum))
_model_phase = eqx.filter_jit(lambda res, model, period: res.model_phase(model, period))


def _summary_figure(out, cohort, result, template, res):
    d = cohort.data
    rows, n = [], len(cohort.subjects)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False, constrained_layout=True)
    for i, s in enumerate(cohort.subjects):
        datum = jax.tree.map(lambda x: x[i], d)
        mask = np.asarray(datum.mask)
        ratio, obs = np.asarray(datum.ratio)[mask], np.asarray(datum.asynchrony)[mask]
        fit_r, _ = _residuals(res, result.model(template, i), datum)
        ref_r, _ = _residuals(res, template, datum)
        model = obs + np.asarray(fit_r)[mask]
        ref = obs + np.asarray(ref_r)[mask]
        rows += [[s, r, o, m, q] for r, o, m, q in zip(ratio, obs, model, ref)]
        ax = axes[0, i]
        ax.plot(ratio, obs, "ko", label="data")
        ax.plot(ratio, model, "r.-", label="fit")
        ax.plot(ratio, ref, "b:", label="reference params")
        ax.set(xlabel="period / SMT", ylabel="asynchrony (ms)", title=str(s))
    axes[0, 0].legend(fontsize=7)
    nrt.io.write_csv(out / "fit_vs_data.csv", ["subject", "period_ratio", "asynchrony_ms",
                                              "model_ms", "reference_model_ms"], rows)
    nrt.io.save_figure(fig, out / "fit_vs_data.png")
    return rows


def _model_taps(res, model, period):
    ts, phase = _model_phase(res, model, jnp.asarray(period))
    return nrt.analysis.phase_crossings(np.asarray(ts), np.asarray(phase))


def _taps_figure(out, cohort, result, template, res):
    d, n = cohort.data, len(cohort.subjects)
    rows = []
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.6 * n), squeeze=False, constrained_layout=True)
    for i, s in enumerate(cohort.subjects):
        model = eqx_f0(result.model(template, i), float(d.smt[i]))
        ax = axes[i, 0]
        for j, trial in enumerate(cohort.trials[i]):
            period = float(d.period[i, j])
            taps = np.asarray(d.taps[i, j])[np.asarray(d.mask[i, j])]
            mtaps = _model_taps(res, model, period)
            for kind, t in (("data", taps), ("model", mtaps)):
                if np.isfinite(period):
                    y, x = 1e3 * (t - period * np.round(t / period)), t
                else:
                    y, x = 1e3 * (np.diff(t) - float(d.smt[i])), 0.5 * (t[1:] + t[:-1])
                rows += [[s, trial, kind, a, b] for a, b in zip(x, y)]
                style = dict(ls="none", marker=".", alpha=0.6) if kind == "data" else dict(lw=1)
                ax.plot(x, y, color=f"C{j % 10}", label=f"{trial} {kind}", **style)
        ax.set(xlabel="time (s)", ylabel="asynchrony / IOI-SMT (ms)", title=f"subject {s}")
        ax.legend(fontsize=6, ncol=4)
    nrt.io.write_csv(out / "fit_vs_data.csv",
                     ["subject", "trial", "source", "time_s", "asynchrony_or_ioi_minus_smt_ms"], rows)
    nrt.io.save_figure(fig, out / "fit_vs_data.png")


def eqx_f0(model, smt):
    return eqx.tree_at(lambda m: m.f0, model, jnp.asarray(1.0 / smt, model.f0.dtype))


def _rmse(res, model_for, data, n):
    out = []
    for i in range(n):
        r, w = _residuals(res, model_for(i), jax.tree.map(lambda x: x[i], data))
        out.append(float(jnp.sqrt(jnp.sum(w * r**2) / jnp.sum(w))))
    return out


def fit_taps(cfg: FitSettings, taps: str | Path, out: Path, key) -> dict:
    """Read and check `taps` (a taps CSV), fit every subject, and write the outputs of
    `nrtjax fit` into `out`; returns the metrics. Nothing is written if the data fail
    their checks."""
    cohort = fitdata.read_taps(taps)
    last = float(jnp.max(jnp.where(cohort.data.mask, cohort.data.taps, 0.0)))
    duration = cfg.duration or float(np.ceil(last + 1.0))
    if last >= duration:
        raise ValueError(f"duration={duration} s ends before the last tap at {last:.3f} s; "
                         "raise duration= or leave it unset.")
    res = losses.TapResiduals(duration=duration, fs=cfg.fs, solver=solver_of(cfg.integrator),
                              readout=cfg.readout)
    result, template = _fit(cfg, res, cohort.data, tuple(cfg.params), key)
    # method=nuts: the posterior says what the data pin down; no profile.
    prof = None if cfg.method == "nuts" else profile(
        template, res, cohort.data, result, factor=cfg.profile_factor, level=cfg.profile_level)
    cols = diagnostics(result, prof)
    _write_params(out / "fitted_params.csv", cohort.subjects, result, template, cols)
    report = identifiability(result)
    for r, j in zip(report if prof is not None else (), range(len(report))):
        r["profile"] = {name: {"identified": bool(prof["identified"][j, k]),
                               "lr_low": float(prof["lr_low"][j, k]),
                               "lr_high": float(prof["lr_high"][j, k]),
                               "scan_lr": float(prof["scan_lr"][j, k]),
                               "design_lr": float(prof["design_lr"][j, k]),
                               "level": cfg.profile_level,
                               "threshold": prof["threshold"],
                               "interval": [float(v) for v in prof["interval"][j, k]]}
                        for k, name in enumerate(result.names)}
    nrt.io.write_json(out / "identifiability.json",
                      {s: r for s, r in zip(cohort.subjects, report)})
    _loss_curves(out, cohort.subjects, result)
    _taps_figure(out, cohort, result, template, res)
    rmse = np.sqrt(np.asarray(result.loss))
    per_subject = {s: {name: _cell(v[i]) for name, v in cols.items()}
                   for i, s in enumerate(cohort.subjects)}
    metrics = {"format": "taps", "n_subjects": len(cohort.subjects), "duration_s": duration,
               "rmse_ms_mean": float(rmse.mean()), "rmse_ms": rmse.tolist(),
               "n_converged": int(np.sum(cols["converged"])),
               "n_constrained": [r["n_constrained"] for r in report],
               "subjects": per_subject, "out": str(out)}
    if prof is not None:
        metrics["n_identified"] = {name: int(np.sum(prof["identified"][:, k]))
                                   for k, name in enumerate(result.names)}
    else:
        metrics["posterior"] = posterior_samples(cfg, res, cohort, result, template,
                                                 jr.fold_in(key, 1), out)
    return metrics


def posterior_samples(cfg: FitSettings, res, cohort, result, template, key, out: Path) -> dict:
    """NUTS on every subject (vmapped over subjects and chains) from the LM optimum;
    writes posterior.npz, posterior.csv and posterior_pairs.png; returns the checks."""
    names = tuple(result.names)
    prior = posterior.LogUniformBox({p: cfg.start_ranges[p] for p in names}, names)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
        draws = posterior.sample_fits(template, res, cohort.data, result, prior, key,
                                      warmup=cfg.nuts_warmup, samples=cfg.nuts_samples,
                                      chains=cfg.nuts_chains, max_depth=cfg.nuts_max_depth)
    draws = {k: np.asarray(v) for k, v in draws.items()}
    theta = draws["theta"]  # (subjects, chains, samples, p)
    lm = np.asarray(result.params)
    nrt.io.write_npz(out / "posterior.npz", theta=theta, names=np.array(names),
                     subjects=np.array([str(s) for s in cohort.subjects]), lm=lm,
                     divergent=draws["divergent"], accept=draws["accept"],
                     n_steps=draws["n_steps"], step_size=draws["step_size"],
                     prior_low=np.array([lo for lo, _ in prior.ranges]),
                     prior_high=np.array([hi for _, hi in prior.ranges]))
    rows, checks = [], {}
    for i, s in enumerate(cohort.subjects):
        summ = posterior.summarise(theta[i], names, credible=cfg.credible)
        div = int(draws["divergent"][i].sum())
        mixed = all(r["rhat"] < RHAT_MAX and r["ess"] >= ESS_MIN for r in summ) and div == 0
        checks[str(s)] = {"mixed": mixed, "divergences": div,
                          "max_rhat": max(r["rhat"] for r in summ),
                          "min_ess": min(r["ess"] for r in summ),
                          "accept": float(draws["accept"][i].mean())}
        for j, r in enumerate(summ):
            rows.append([s, r["param"], float(lm[i, j]), r["mean"], r["median"], r["sd"],
                         r["ci_low"], r["ci_high"], r["rhat"], r["ess"], div,
                         "yes" if mixed else "no"])
    nrt.io.write_csv(out / "posterior.csv",
                     ["subject", "param", "lm", "mean", "median", "sd", "ci_low", "ci_high",
                      "rhat", "ess", "divergences", "mixed"], rows)
    _pairs_figure(out / "posterior_pairs.png", cohort.subjects, theta, lm, names, prior)
    return {"credible": cfg.credible, "prior": dict(zip(names, prior.ranges)),
            "n_mixed": int(sum(c["mixed"] for c in checks.values())),
            "divergences": int(sum(c["divergences"] for c in checks.values())),
            "subjects": checks}


# A subject's chains count as mixed with split R-hat below 1.01 and at least 100 effective
# draws for every parameter (Vehtari et al. 2021), and no divergent transition.
RHAT_MAX, ESS_MIN = 1.01, 100


def _pairs_figure(path, subjects, theta, lm, names, prior):
    n = len(subjects)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False,
                             constrained_layout=True)
    for i, s in enumerate(subjects):
        ax = axes[i // cols, i % cols]
        t = theta[i].reshape(-1, theta.shape[-1])
        if t.shape[1] >= 2:
            for c in range(theta.shape[1]):
                ax.plot(theta[i, c, :, 0], theta[i, c, :, 1], ".", ms=1.5, alpha=0.4,
                        color=f"C{c}", label=f"chain {c}" if c < 2 else None)
            ax.plot(lm[i, 0], lm[i, 1], "k+", ms=10, mew=1.5, label="LM optimum")
            ax.set(xlabel=names[0], ylabel=names[1])
            ax.locator_params(nbins=4)
        else:
            ax.hist(t[:, 0], bins=40, color="C0")
            ax.axvline(lm[i, 0], color="k", label="LM optimum")
            ax.set(xlabel=names[0])
        ax.set_title(str(s), fontsize=8)
    axes[0, 0].legend(fontsize=7)
    for k in range(n, rows * cols):
        axes[k // cols, k % cols].axis("off")
    nrt.io.save_figure(fig, path)


def _fit_summary(run: Run, out: Path) -> dict:
    cfg = run.cfg
    cohort = fitdata.read_summary(cfg.summary)
    duration = cfg.duration or 30.0
    res = losses.SummaryResiduals(duration=duration, window=min(cfg.window, duration / 2),
                                  fs=cfg.fs, solver=solver_of(cfg.integrator))
    params = tuple(p for p in cfg.params if p != "lambda1") or ("lambda2",)
    params = params if "lambda2" in params else ("lambda2", *params)
    note = RATIO_NOTE.format(l1=cfg.lambda1)
    print(f"nrtjax fit: {note}")
    key_fit, key_pair = jr.split(run.key)
    result, template = _fit(cfg, res, cohort.data, params, key_fit)
    n = len(cohort.subjects)
    ratio = np.asarray(result.params[:, 0]) / cfg.lambda1
    ratio_se = np.asarray(result.se[:, 0]) / cfg.lambda1
    _write_params(out / "fitted_params.csv", cohort.subjects, result, template,
                  {"lambda2_over_lambda1": ratio, "lambda2_over_lambda1_se": ratio_se})
    pair_template = result.model(template, 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
        pair = nrt.fit(pair_template, res, jax.tree.map(lambda x: x[:1], cohort.data),
                       params=("lambda1", "lambda2"), key=key_pair, restarts=1, steps=1,
                       method=cfg.method)
    report = {"note": note, "subjects": dict(zip(cohort.subjects, identifiability(result))),
              "pair_check": {"subject": cohort.subjects[0], **identifiability(pair)[0]}}
    nrt.io.write_json(out / "identifiability.json", report)
    _loss_curves(out, cohort.subjects, result)
    _summary_figure(out, cohort, result, template, res)
    rmse = _rmse(res, lambda i: result.model(template, i), cohort.data, n)
    rmse_ref = _rmse(res, lambda i: template, cohort.data, n)
    return {"format": "summary", "n_subjects": n, "note": note,
            "lambda2_over_lambda1": ratio.tolist(), "rmse_ms": rmse,
            "rmse_reference_ms": rmse_ref, "out": str(out)}


@job("fit", Config)
def main(run: Run) -> dict:
    # Gradients through 10^4 Euler steps and finite-difference Hessians want float64.
    jax.config.update("jax_enable_x64", True)
    out = run.dir  # out= names the run folder itself (experiments/_job.py stages it)
    with run.phase("fitting"):
        metrics = (fit_taps(run.cfg, run.cfg.taps, out, run.key) if run.cfg.taps
                   else _fit_summary(run, out))
    metrics["out"] = str(run.final_dir)
    run.log({k: v for k, v in metrics.items() if isinstance(v, float)})
    return metrics


if __name__ == "__main__":
    main()
