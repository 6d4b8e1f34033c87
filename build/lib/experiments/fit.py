"""Fit ASHLE to subject tapping data by gradient (taps=PATH or summary=PATH, out=DIR)."""

import dataclasses
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import nrtjax as nrt
from experiments._job import BaseConfig, ConfigError, Run, check_range, job
from nrtjax.fit import data as fitdata, identifiability, losses

COLUMNS = ("lambda1", "lambda2", "gamma")
RATIO_NOTE = (
    "Steady-state asynchronies depend on lambda1 and lambda2 only through lambda2/lambda1 "
    "(in the 1:1 steady state f' = 0 gives lambda1 sin(phase lag) = lambda2 (exp((f-f0)/f0) "
    "- 1)). Summary data therefore identify the ratio, not the pair: lambda1 is held at "
    "{l1:g} and only lambda2 (i.e. the ratio lambda2/lambda1) is fitted. The Hessian in "
    "(lambda1, lambda2) at the fit is reported under 'pair_check'.")


@dataclasses.dataclass
class Config(BaseConfig):
    taps: str | None = None
    summary: str | None = None
    out: str | None = None
    params: list[str] = dataclasses.field(default_factory=lambda: ["lambda1", "lambda2"])
    lambda1: float = 4.0
    lambda2: float = 2.0
    gamma: float = 0.02
    restarts: int = 4
    steps: int = 300
    patience: int = 40
    learning_rate: float = 0.05
    fs: float = 500.0
    duration: float | None = None
    window: float = 10.0

    def __post_init__(self):
        if (self.taps is None) == (self.summary is None):
            raise ConfigError("give exactly one of taps=PATH or summary=PATH.")
        for name in ("lambda1", "lambda2", "gamma", "learning_rate", "fs", "window"):
            check_range(name, getattr(self, name), low=0.0, low_open=True)
        check_range("restarts", self.restarts, low=1, high=256)
        check_range("steps", self.steps, low=1)
        check_range("patience", self.patience, low=1)
        if self.duration is not None:
            check_range("duration", self.duration, low=1.0)
            check_range("window", self.window, high=self.duration, high_open=True)
        bad = [p for p in self.params if p not in COLUMNS]
        if bad or not self.params or len(set(self.params)) != len(self.params):
            raise ConfigError(f"params={self.params} must be distinct names among {COLUMNS}.")


def _fit(run: Run, residuals, data, params, key):
    cfg = run.cfg
    template = nrt.ASHLE(lambda1=cfg.lambda1, lambda2=cfg.lambda2, gamma=cfg.gamma)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
        return nrt.fit(template, residuals, data, params=params, key=key,
                       restarts=cfg.restarts, steps=cfg.steps, patience=cfg.patience,
                       learning_rate=cfg.learning_rate), template


def _write_params(path, subjects, result, template, extra=None):
    fitted = list(result.names)
    header = ["subject", *COLUMNS, "loss", *[f"{p}_se" for p in fitted], *(extra or {})]
    rows = []
    for i, s in enumerate(subjects):
        m = result.model(template, i)
        row = [s, *[float(getattr(m, c)) for c in COLUMNS], float(result.loss[i]),
               *[float(v) for v in result.se[i]]]
        rows.append(row + [float(v[i]) for v in (extra or {}).values()])
    nrt.io.write_csv(path, header, rows)


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


def _summary_figure(out, cohort, result, template, res):
    d = cohort.data
    rows, n = [], len(cohort.subjects)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False, constrained_layout=True)
    for i, s in enumerate(cohort.subjects):
        datum = jax.tree.map(lambda x: x[i], d)
        mask = np.asarray(datum.mask)
        ratio, obs = np.asarray(datum.ratio)[mask], np.asarray(datum.asynchrony)[mask]
        fit_r, _ = res(result.model(template, i), datum)
        ref_r, _ = res(template, datum)
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


def _model_taps(model, period, duration, fs):
    ts, ys, _ = losses.simulate_trial(model, jnp.asarray(period), duration=duration, fs=fs)
    return nrt.analysis.phase_crossings(np.asarray(ts), np.angle(np.asarray(ys.z)))


def _taps_figure(out, cohort, result, template, duration, fs):
    d, n = cohort.data, len(cohort.subjects)
    rows = []
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.6 * n), squeeze=False, constrained_layout=True)
    for i, s in enumerate(cohort.subjects):
        model = eqx_f0(result.model(template, i), float(d.smt[i]))
        ax = axes[i, 0]
        for j, trial in enumerate(cohort.trials[i]):
            period = float(d.period[i, j])
            taps = np.asarray(d.taps[i, j])[np.asarray(d.mask[i, j])]
            mtaps = _model_taps(model, period, duration, fs)
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
        r, w = res(model_for(i), jax.tree.map(lambda x: x[i], data))
        out.append(float(jnp.sqrt(jnp.sum(w * r**2) / jnp.sum(w))))
    return out


def _fit_taps(run: Run, out: Path) -> dict:
    cfg = run.cfg
    cohort = fitdata.read_taps(cfg.taps)
    last = float(jnp.max(jnp.where(cohort.data.mask, cohort.data.taps, 0.0)))
    duration = cfg.duration or float(np.ceil(last + 1.0))
    if last >= duration:
        raise ValueError(f"duration={duration} s ends before the last tap at {last:.3f} s; "
                         "raise duration= or leave it unset.")
    res = losses.TapResiduals(duration=duration, fs=cfg.fs)
    result, template = _fit(run, res, cohort.data, tuple(cfg.params), run.key)
    _write_params(out / "fitted_params.csv", cohort.subjects, result, template)
    report = identifiability(result)
    nrt.io.write_json(out / "identifiability.json",
                      {s: r for s, r in zip(cohort.subjects, report)})
    _loss_curves(out, cohort.subjects, result)
    _taps_figure(out, cohort, result, template, duration, cfg.fs)
    rmse = np.sqrt(np.asarray(result.loss))
    return {"format": "taps", "n_subjects": len(cohort.subjects), "duration_s": duration,
            "rmse_ms_mean": float(rmse.mean()), "rmse_ms": rmse.tolist(),
            "n_constrained": [r["n_constrained"] for r in report], "out": str(out)}


def _fit_summary(run: Run, out: Path) -> dict:
    cfg = run.cfg
    cohort = fitdata.read_summary(cfg.summary)
    duration = cfg.duration or 30.0
    res = losses.SummaryResiduals(duration=duration, window=min(cfg.window, duration / 2),
                                  fs=cfg.fs)
    params = tuple(p for p in cfg.params if p != "lambda1") or ("lambda2",)
    params = params if "lambda2" in params else ("lambda2", *params)
    note = RATIO_NOTE.format(l1=cfg.lambda1)
    print(f"nrtjax fit: {note}")
    key_fit, key_pair = jr.split(run.key)
    result, template = _fit(run, res, cohort.data, params, key_fit)
    n = len(cohort.subjects)
    ratio = np.asarray(result.params[:, 0]) / cfg.lambda1
    ratio_se = np.asarray(result.se[:, 0]) / cfg.lambda1
    _write_params(out / "fitted_params.csv", cohort.subjects, result, template,
                  {"lambda2_over_lambda1": ratio, "lambda2_over_lambda1_se": ratio_se})
    pair_template = result.model(template, 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Complex dtype support in Diffrax")
        pair = nrt.fit(pair_template, res, jax.tree.map(lambda x: x[:1], cohort.data),
                       params=("lambda1", "lambda2"), key=key_pair, restarts=1, steps=1)
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
    out = Path(run.cfg.out) if run.cfg.out else run.dir
    metrics = _fit_taps(run, out) if run.cfg.taps else _fit_summary(run, out)
    run.log({k: v for k, v in metrics.items() if isinstance(v, float)})
    return metrics


if __name__ == "__main__":
    main()
