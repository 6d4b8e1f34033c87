"""Each rhythm experiment at reduced size through its Hydra config; metrics.json fields checked.

The full-size runs (the numbers in docs/ashle.md) are marked slow.
"""

import importlib
import json
import sys

import numpy as np
import pytest

REDUCED = {
    "ashle_asynchrony": ["n_subjects=2", "duration=6"],
    "ashle_drift": ["n_subjects=2", "duration=12", "max_intervals=12"],
    "musicians": ["n_per_group=3", "duration=6", "period_ratios=[0.7,1.3]"],
    "hopf_portraits": ["n_forcing=5", "duration=6", "portrait_duration=3", "n_initial=2", "fs=40"],
    "beat_detection": ["duration=6", "fs=64"],
    "consonance": ["max_detuning=0.03", "n_detunings=7", "duration=12", "fs=32"],
}

FIELDS = {
    "ashle_asynchrony": ["period_ratios", "model_async_ms", "model_se_ms", "human_async_ms",
                         "human_se_ms", "rmse_ms", "pearson_r", "sign_agreement", "sync_async_ms",
                         "min_plv", "n_subjects", "smt_ms", "n_failed", "duration_s", "seed"],
    "ashle_drift": ["conditions", "model_slope_ms_per_ioi", "model_se_ms_per_ioi",
                    "human_slope_ms_per_ioi", "human_se_ms_per_ioi", "pearson_r", "sign_agreement",
                    "spr_slope_ms_per_ioi", "n_subjects", "n_failed", "n_short", "duration_s", "seed"],
    "musicians": ["n_per_group", "plv_musicians", "plv_nonmusicians", "plv_sd_musicians",
                  "plv_sd_nonmusicians", "plv_t", "plv_p", "plv_cohens_d", "plv_mannwhitney_p",
                  "entrain_s_musicians", "entrain_s_nonmusicians", "entrain_t", "entrain_p",
                  "entrain_cohens_d", "never_entrained_musicians", "never_entrained_nonmusicians",
                  "period_ratios", "n_failed", "duration_s", "seed"],
    "hopf_portraits": ["alphas", "final_radius", "final_radius_exact", "radius_max_err",
                       "limit_radius", "forcing_hz", "resonance_peak_hz", "natural_hz",
                       "steady_state_max_rel_err", "n_failed", "seed"],
    "beat_detection": ["tempo_hz", "detected_hz", "detected_error_pct", "peak_is_fundamental",
                       "local_peaks_hz", "local_peaks_harmonic", "amplitude_at_harmonics",
                       "n_oscillators", "stimulus", "n_failed", "seed"],
    "consonance": ["intervals", "ratios", "locking_width", "order", "helmholtz_rank",
                   "spearman_rho_helmholtz", "spearman_p_helmholtz", "pearson_r_helmholtz",
                   "pearson_p_helmholtz", "order_spearman_rho_helmholtz", "spearman_rho_bones2015",
                   "spearman_p_bones2015", "pearson_r_bones2015", "width_floor", "n_detunings",
                   "duration_s", "seed"],
}

FIGURES = {"ashle_asynchrony": "ashle_asynchrony.png", "ashle_drift": "ashle_drift.png",
           "musicians": "musicians.png", "hopf_portraits": "hopf_portraits.png",
           "beat_detection": "beat_detection.png", "consonance": "consonance.png"}


def run_job(name, overrides, out, monkeypatch):
    module = importlib.import_module(f"experiments.{name}")
    argv = [name, *overrides, "wandb.mode=disabled", f"hydra.run.dir={out}"]
    monkeypatch.setattr(sys, "argv", argv)
    module.main()
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("name", list(REDUCED))
def test_reduced_experiment(name, tmp_path, monkeypatch):
    metrics = run_job(name, REDUCED[name], tmp_path, monkeypatch)
    assert set(FIELDS[name]) <= set(metrics), set(FIELDS[name]) - set(metrics)
    assert metrics.get("n_failed", 0) == 0   # consonance raises on divergence instead
    assert (tmp_path / FIGURES[name]).stat().st_size > 1000
    if name == "ashle_asynchrony":
        # faster metronome -> later taps, slower -> earlier (sign pattern of the human data)
        assert metrics["model_async_ms"][0] > 0 > metrics["model_async_ms"][-1]
        assert metrics["min_plv"] > 0.99
    if name == "hopf_portraits":
        assert metrics["radius_max_err"] < 1e-3
    if name == "consonance":
        assert metrics["locking_width"][0] == max(metrics["locking_width"])   # the octave


def test_config_errors_name_the_key(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        run_job("musicians", ["threshold=1.5"], tmp_path, monkeypatch)
    assert e.value.code == 2
    assert "threshold" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REDUCED))
def test_full_size_experiment(name, tmp_path, monkeypatch):
    metrics = run_job(name, [], tmp_path, monkeypatch)
    assert metrics.get("n_failed", 0) == 0
    assert np.all(np.isfinite(np.asarray([v for v in metrics.values()
                                          if isinstance(v, float)], dtype=float)))
