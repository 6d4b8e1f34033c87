"""The experiment system: config groups, validation, CLI, multirun, launchers, wandb offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

import nrtjax as nrt
from experiments import _cli, simulate, sweep, train_surrogate  # noqa: F401 (registers its schema)
from experiments._groups import (
    ASHLEConfig,
    GrFNNConfig,
    LorenzConfig,
    MetronomeConfig,
    SilenceConfig,
    SolverConfig,
)
from experiments._job import CONF_DIR, ConfigError, Run, WandbConfig

from .helpers import load_script

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=hopf", "stimulus.duration=2", "stimulus.fs=20"]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def _cli_run(*args, module=("-m", "experiments._cli"), timeout=240):
    return subprocess.run([sys.executable, *module, *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text())


def test_help_lists_jobs(capsys):
    with pytest.raises(SystemExit) as e:
        _cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("simulate", "sweep", "demo"):
        assert f"  {name} " in out


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return OmegaConf.to_object(compose(name, overrides=overrides))


@pytest.mark.parametrize("overrides", [
    [], ["model=hopf"], ["model=ashle", "solver=euler"], ["model=lorenz", "stimulus=silence"],
    ["stimulus=clicks", "solver=tsit5"], ["solver=dopri5", "solver.rtol=1e-4"],
    ["experiment=lorenz_chaos"],
])
def test_simulate_groups_compose(overrides):
    cfg = _compose("simulate", overrides)
    assert isinstance(cfg, simulate.Config) and cfg.resume is None
    assert cfg.wandb.mode == "offline"                  # the default: no account needed


@pytest.mark.parametrize("preset", ["alpha_beta_map", "hopf_tuning", "ashle_tempo", "lorenz_chaos"])
def test_sweep_presets_compose(preset):
    overrides = [f"experiment={preset}"] + (["grid.rho=[10,28]"] if preset == "lorenz_chaos" else [])
    from experiments._job import prepare_overrides

    cfg = _compose("sweep", prepare_overrides(overrides, ("grid",)))
    assert isinstance(cfg, sweep.Config) and cfg.axes()


def test_adaptive_solver_needs_tolerances():
    with pytest.raises(ConfigError, match="solver.rtol and solver.atol are required"):
        _compose("simulate", ["solver=tsit5", "solver.rtol=null"])


@pytest.mark.parametrize("args, message", [
    (["simulate", "model.foo=1"], "unknown key model.foo"),
    (["sweep", "grid.eps=linspace(0.5,1.5,3)"],
     "grid.eps contains 1.5: model.eps=1.5 is out of range: allowed [0.0, 1.0]"),
])
def test_bad_override_fails_before_compute(tmp_path, args, message):
    r = _cli_run(*args, "wandb.mode=disabled", f"resume={tmp_path}")
    assert r.returncode != 0 and message in r.stderr, r.stderr[-1500:]
    assert not list(tmp_path.glob("*.npz")) and not (tmp_path / "metrics.json").exists()
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("name, overrides, message", [
    ("simulate", ["model.n=abc"], "Error merging override model.n=abc"),
    ("simulate", ["stimulus.duration=-1"], r"stimulus.duration=-1.0 is out of range: allowed \(0.0, inf\)"),
    ("simulate", ["model.eps=1.5"], r"model.eps=1.5 is out of range: allowed \[0.0, 1.0\]"),
    ("simulate", ["tail=0"], r"tail=0.0 is out of range: allowed \(0.0, 1.0\]"),
    ("simulate", ["solver.name=rk5"], r"solver.name='rk5' is not allowed: choose one of"),
    ("simulate", ["model=ashle", "stimulus.fs=3"], r"stimulus.fs=3.0 is out of range: allowed \(4.0"),
    ("simulate", ["stimulus.fs=10"],
     r"stimulus.fs=10.0 is out of range: allowed \(16.0, inf\)\. fs must exceed twice the highest"),
    ("simulate", ["model=hopf", "model.freq=0"], r"model.freq=0.0 is out of range"),
    ("sweep", ["++grid.alpha=[0,1]", "chunk_size=0"], r"chunk_size=0 is out of range: allowed \[1, inf\)"),
    ("sweep", ["++grid.alpha=[0,1]", "heatmap=nope"], r"heatmap='nope' is not allowed"),
    ("train_surrogate", ["model.lock_f0=0"], r"model.lock_f0=0.0 is out of range"),
    ("train_surrogate", ["model.tempo_clip=[75]"], r"model.tempo_clip=\[75.0\] must be"),
])
def test_bad_value_names_key_and_range(name, overrides, message):
    with pytest.raises((ConfigError, HydraException, OmegaConfBaseException), match=message):
        _compose(name, overrides)


def test_multirun_gives_one_directory_per_value(tmp_path):
    r = _cli_run("simulate", "-m", *TINY, "model.alpha=-0.5,-0.1", "wandb.mode=disabled",
                 f"resume={tmp_path}")
    assert r.returncode == 0, r.stderr[-2000:]
    for num, alpha in ((0, -0.5), (1, -0.1)):
        d = tmp_path / str(num)
        assert json.loads((d / "config.json").read_text())["model"]["alpha"] == alpha
        assert (d / "trajectory.png").exists()
        z = np.asarray(nrt.simulate(nrt.Hopf(1.0, alpha), nrt.metronome(2.0, 2.0, 20.0, 0.25),
                                    dt=0.05).ys)
        want = np.abs(z[-11:]).mean()                    # tail 0.25 of 41 samples
        assert _metrics(d)["amplitude"] == pytest.approx(want, rel=1e-5)   # job runs float32


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_launcher_runs_a_two_job_sweep(tmp_path, launcher):
    r = _cli_run("sweep", "-m", f"hydra/launcher={launcher}", *TINY, "grid.alpha=[-0.5,-0.1]",
                 "model.beta=-1,-2", "wandb.mode=disabled", f"resume={tmp_path}")
    assert r.returncode == 0, r.stderr[-3000:]
    for num, beta in ((0, -1.0), (1, -2.0)):
        d = tmp_path / str(num)
        assert json.loads((d / "config.json").read_text())["model"]["beta"] == beta
        assert _metrics(d)["members_ok"] == 2 and (d / "sweep.nc").exists()
    if launcher == "submitit_local":
        assert list((tmp_path / ".submitit").iterdir())


def test_wandb_offline_writes_a_local_run(tmp_path):
    # `python -m experiments.NAME` is the same app as `nrtjax NAME`; offline is the default.
    r = _cli_run(*TINY, f"resume={tmp_path}", module=("-m", "experiments.simulate"), timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
    assert "outputs in" in r.stdout and str(tmp_path) in r.stdout


@pytest.mark.parametrize("model, stimulus, solver, keys", [
    (GrFNNConfig(n=5, fmax=4.0), MetronomeConfig(duration=2.0, fs=16.0), SolverConfig(),
     ("peak_amplitude", "peak_frequency")),
    (ASHLEConfig(), MetronomeConfig(amplitude=1.0, duration=2.0, fs=100.0),
     SolverConfig(name="euler"), ("motor_hz", "sensory_hz")),
    (LorenzConfig(), SilenceConfig(duration=2.0, fs=100.0),
     SolverConfig(name="tsit5", rtol=1e-6, atol=1e-8), ("x_std", "z_mean")),
])
def test_simulate_job_writes_outputs(tmp_path, model, stimulus, solver, keys):
    cfg = simulate.Config(model=model, stimulus=stimulus, solver=solver, save_every=2,
                          wandb=WandbConfig(mode="disabled"))
    metrics = simulate.main.run_fn(Run("simulate", cfg, {}, tmp_path))
    assert metrics["ok"] and all(np.isfinite(metrics[k]) for k in keys)
    traj, _ = simulate.run_model(cfg)
    with np.load(tmp_path / "trajectory.npz", allow_pickle=False) as f:
        np.testing.assert_array_equal(f["ts"], np.asarray(traj.ts)[::2])
    assert (tmp_path / "trajectory.png").stat().st_size > 1000
    if isinstance(model, LorenzConfig):
        ys = np.asarray(traj.ys)[-51:]
        assert metrics["x_std"] == pytest.approx(ys[:, 0].std(), rel=1e-12)


def test_slurm_preview_renders_the_documented_settings():
    preview = load_script("slurm_preview")
    text, n = preview.sbatch_text("sweep", ["experiment=alpha_beta_map",
                                            "hydra.launcher.partition=debug",
                                            "hydra.launcher.gpus_per_node=2"])
    assert n == 1
    for line in ("#SBATCH --partition=debug", "#SBATCH --gpus-per-node=2", "#SBATCH --time=60",
                 "#SBATCH --cpus-per-task=1", "#SBATCH --mem=4GB", "#SBATCH --signal=USR2@120"):
        assert line in text


def test_run_checkpoint_helpers_round_trip(tmp_path):
    cfg = simulate.Config(model=GrFNNConfig(n=3), stimulus=MetronomeConfig(),
                          wandb=WandbConfig(mode="disabled"))
    run = Run("simulate", cfg, {}, tmp_path)
    assert run.load_checkpoint("state") is None and run.load_model("net", None) is None
    run.save_checkpoint("state", step=np.array(7), w=np.arange(4.0))
    got = run.load_checkpoint("state")
    assert int(got["step"]) == 7 and np.array_equal(got["w"], np.arange(4.0))
    net = nrt.GrFNN(nrt.log_freqs(0.5, 2.0, 3), alpha=-0.3)
    run.save_model("net", net)
    back = run.load_model("net", nrt.GrFNN(nrt.log_freqs(0.5, 2.0, 3)))
    assert float(back.alpha) == -0.3
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["net.eqx", "state.npz"]
