"""The sweep: grid parsing, sharded vmap, members vs separate simulations, resume after a kill."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import nrtjax as nrt
from experiments import sweep
from experiments._groups import GrFNNConfig, HopfConfig, MetronomeConfig
from experiments._job import ConfigError, Run, WandbConfig, prepare_overrides
from experiments._sweep_grid import members, parse_axis, parse_grid

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def _cli(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "experiments._cli", *args], cwd=ROOT,
                          env=env or _env(), capture_output=True, text=True, timeout=timeout)


# --- grid syntax ---------------------------------------------------------------------------
def test_parse_axis_matches_numpy():
    assert np.array_equal(parse_axis("a", "linspace(-1,0.5,256)"), np.linspace(-1, 0.5, 256))
    assert np.array_equal(parse_axis("a", "logspace(-3, 0, 4)"), np.logspace(-3, 0, 4))
    assert np.array_equal(parse_axis("a", "geomspace(0.5,8,5)"), np.geomspace(0.5, 8, 5))
    assert np.array_equal(parse_axis("a", "arange(-2,0,0.5)"), np.arange(-2, 0, 0.5))
    assert np.array_equal(parse_axis("a", [0.5, 1, 2]), np.array([0.5, 1.0, 2.0]))
    assert np.array_equal(parse_axis("a", 3), np.array([3.0]))
    assert np.array_equal(parse_axis("a", "0.25"), np.array([0.25]))


@pytest.mark.parametrize("spec, match", [
    ("linspace(0,1)", "grid.alpha: linspace takes 3 arguments"),
    ("linspace(0,1,2.5)", r"grid.alpha: num=2.5 must be an integer"),
    ("arange(0,1,-1)", "grid.alpha: arange.*is empty"),
    ("geomspace(0,1,3)", "grid.alpha: geomspace needs positive"),
    ("exp(1)", "grid.alpha: 'exp\\(1\\)' is not a number"),
    ("__import__('os')", "is not a number"),
    ([], "grid.alpha is an empty list"),
    ("nan", "must be finite"),
])
def test_parse_axis_errors_name_the_key(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_axis("alpha", spec)


def test_grid_layout_and_overrides():
    axes = parse_grid({"alpha": "linspace(0,1,3)", "stimulus": {"tempo_hz": [1, 2]}})
    assert list(axes) == ["alpha", "stimulus.tempo_hz"]
    flat = members(axes)
    assert flat["alpha"].tolist() == [0, 0, 0.5, 0.5, 1, 1]          # C order
    assert flat["stimulus.tempo_hz"].tolist() == [1, 2, 1, 2, 1, 2]
    args = ["grid.alpha=linspace(-1,0.5,256)", "+grid.x=1", "model.n=3", "-m",
            "stimulus.fs=arange(1,2,1)", "hydra.run.dir=/tmp/x"]
    assert prepare_overrides(args, ("grid",)) == [
        "++grid.alpha='linspace(-1,0.5,256)'", "+grid.x=1", "model.n=3", "-m",
        "stimulus.fs='arange(1,2,1)'", "hydra.run.dir=/tmp/x"]


# --- sharded_vmap --------------------------------------------------------------------------
def test_sharded_vmap_equals_vmap_and_pads():
    def fn(p):
        return {"y": jnp.sin(p["a"]) * p["b"], "v": jnp.stack([p["a"], p["b"]])}
    params = {"a": jnp.linspace(0.0, 1.0, 5), "b": jnp.arange(5.0)}
    got = nrt.sharded_vmap(fn)(params)
    want = jax.vmap(fn)(params)
    assert got["y"].shape == (5,) and got["v"].shape == (5, 2)
    np.testing.assert_array_equal(np.asarray(got["y"]), np.asarray(want["y"]))
    one = nrt.sharded_vmap(fn, devices=jax.devices()[:1])(
        {"a": params["a"][:3], "b": params["b"][:3]})
    np.testing.assert_array_equal(np.asarray(one["y"]), np.asarray(want["y"][:3]))
    with pytest.raises(ValueError, match="same leading"):
        nrt.sharded_vmap(fn)({"a": jnp.zeros(3), "b": jnp.zeros(4)})


def test_sharded_vmap_splits_over_four_devices():
    code = """
import jax, jax.numpy as jnp, numpy as np, nrtjax as nrt
assert jax.device_count() == 4
freqs = nrt.log_freqs(0.5, 2.0, 5)
sig = nrt.metronome(1.0, 2.0, 20.0, amplitude=0.25)
f = lambda p: nrt.simulate(nrt.GrFNN(freqs, alpha=p["a"]), sig, dt=0.05, throw=False).ys[-1]
a = {"a": jnp.linspace(-1.0, 0.5, 6)}   # 6 members on 4 devices: padded to 8
got = nrt.sharded_vmap(f)(a)
want = jax.vmap(f)(a)
assert got.shape == (6, 5)
np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7)
run = nrt.sharded_vmap(lambda p: p["a"] * 2)
full = run({"a": jnp.arange(8.0)})
assert len(full.sharding.device_set) == 4, full.sharding
print("OK")
"""
    env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-2000:]


# --- sweep members against separate simulations ---------------------------------------------
def _config(**kw):
    base = dict(model=GrFNNConfig(n=5, fmin=0.5, fmax=4.0), tail=0.5,
                stimulus=MetronomeConfig(tempo_hz=1.0, duration=4.0, fs=32.0, amplitude=0.25),
                grid={"alpha": [-1.0, 0.0, 3.0], "beta1": [-1.0, 2.0]}, chunk_size=4,
                wandb=WandbConfig(mode="disabled"))
    return sweep.Config(**{**base, **kw})


def test_sweep_members_equal_separate_simulations(tmp_path):
    cfg = _config()
    metrics = sweep.main.run_fn(Run("sweep", cfg, {}, tmp_path))
    ds = xr.open_dataset(tmp_path / "sweep.nc")
    assert (tmp_path / "heatmap.png").stat().st_size > 1000
    sig = nrt.metronome(1.0, 4.0, 32.0, amplitude=0.25)
    freqs = nrt.log_freqs(0.5, 4.0, 5)
    n_ok = 0
    for alpha in (-1.0, 0.0, 3.0):
        for beta1 in (-1.0, 2.0):
            traj = nrt.simulate(nrt.GrFNN(freqs, alpha=alpha, beta1=beta1), sig, dt=1 / 32,
                                throw=False)
            row = ds.sel(alpha=alpha, beta1=beta1)
            assert int(row["ok"]) == int(traj.ok)
            if not bool(traj.ok):
                with pytest.raises(nrt.SimulationDivergedError):
                    nrt.simulate(nrt.GrFNN(freqs, alpha=alpha, beta1=beta1), sig, dt=1 / 32)
                continue
            n_ok += 1
            z = np.asarray(traj.ys)
            amp = np.abs(z[-(z.shape[0] // 2 + 1):]).mean(0)   # tail = half of 129 samples
            np.testing.assert_allclose(row["final_real"], z[-1].real, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(row["final_imag"], z[-1].imag, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(row["amplitude"], amp, rtol=1e-12)
            assert float(row["peak_amplitude"]) == pytest.approx(amp.max(), rel=1e-12)
            assert float(row["peak_frequency"]) == pytest.approx(freqs[np.argmax(amp)])
    # alpha = 3, beta1 = +2 explodes: flagged, not fatal.
    assert 0 < n_ok < 6 and metrics["members_failed"] == 6 - n_ok
    assert metrics["members"] == 6 and metrics["chunks"] == 2


def test_stimulus_axis_equals_separate_simulations(tmp_path):
    cfg = _config(model=HopfConfig(freq=1.5, alpha=-0.5),
                  grid={"stimulus": {"tempo_hz": [1.0, 1.5]}, "freq": [1.5, 2.0], "alpha": [-0.5]})
    sweep.main.run_fn(Run("sweep", cfg, {}, tmp_path))
    ds = xr.open_dataset(tmp_path / "sweep.nc")
    for tempo in (1.0, 1.5):
        sig = nrt.metronome(tempo, 4.0, 32.0, amplitude=0.25)
        for f in (1.5, 2.0):
            z = np.asarray(nrt.simulate(nrt.Hopf(f, -0.5), sig, dt=1 / 32).ys)
            row = ds.sel({"stimulus.tempo_hz": tempo, "freq": f, "alpha": -0.5})
            np.testing.assert_allclose(row["final_real"], z[-1].real, rtol=1e-12)
            np.testing.assert_allclose(row["amplitude"], np.abs(z[-65:]).mean(), rtol=1e-12)


@pytest.mark.parametrize("grid, match", [
    ({"eps": [0.5, 1.5]}, r"grid.eps contains 1.5: model.eps=1.5 is out of range: allowed \[0.0, 1.0\]"),
    ({"n": [3, 5]}, r"grid.n is not sweepable.*multirun"),
    ({"stimulus": {"amplitude": [-1.0]}}, r"grid.stimulus.amplitude contains -1"),
    ({}, r"grid is empty.*grid.alpha=linspace"),
])
def test_sweep_config_errors(grid, match):
    with pytest.raises(ConfigError, match=match):
        _config(grid=grid)


def test_sweep_nyquist_counts_swept_frequencies():
    with pytest.raises(ConfigError, match=r"stimulus.fs=32.0 is out of range: allowed \(40.0"):
        _config(model=HopfConfig(), grid={"freq": "linspace(1,20,3)"})


# --- resume after a kill (through the command line) -----------------------------------------
def test_killed_sweep_resumes_to_identical_results(tmp_path):
    args = ["sweep", "model=hopf", "grid.alpha=linspace(-1,0.5,7)", "grid.freq=[1,2]",
            "stimulus.duration=2", "stimulus.fs=20", "chunk_size=4", "wandb.mode=disabled"]
    killed = _cli(*args, f"resume={tmp_path / 'a'}", env=_env(**{sweep.FAIL_AFTER_ENV: "1"}))
    assert killed.returncode != 0 and "simulated kill after chunk 1" in killed.stderr
    # A failed run leaves only its checkpoints, in the staging folder beside resume= (issue 21).
    chunks = sorted(p.name for p in (tmp_path / ".a.partial" / "checkpoints").glob("sweep_chunk_*.npz"))
    assert chunks == ["sweep_chunk_00000.npz", "sweep_chunk_00001.npz"]
    assert not (tmp_path / "a").exists()
    assert "resume with: nrtjax sweep" in killed.stderr
    resumed = _cli(*args, f"resume={tmp_path / 'a'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    fresh = _cli(*args, f"hydra.run.dir={tmp_path / 'b'}")
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    ma = json.loads((tmp_path / "a" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert (ma["chunks"], ma["chunks_resumed"], mb["chunks_resumed"]) == (4, 2, 0)
    a, b = xr.open_dataset(tmp_path / "a" / "sweep.nc"), xr.open_dataset(tmp_path / "b" / "sweep.nc")
    assert set(a.data_vars) == set(b.data_vars) and a["ok"].shape == (7, 2)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_resume_refuses_a_different_sweep(tmp_path):
    run = Run("sweep", _config(), {}, tmp_path)
    cfg = _config()
    sweep._check_resume(run, sweep._spec(cfg, cfg.axes()))
    sweep._check_resume(run, sweep._spec(cfg, cfg.axes()))          # same sweep: fine
    other = _config(grid={"alpha": [-1.0, 0.0], "beta1": [-1.0, 2.0]})
    with pytest.raises(ConfigError, match=r"holds the chunks of a different sweep \(axes differ\)"):
        sweep._check_resume(run, sweep._spec(other, other.axes()))
