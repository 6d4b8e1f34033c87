"""The job contract (issue 21, docs/jobs.md), one test per finding, run as users run jobs:
`python -m experiments._cli NAME ...` in a subprocess, in a scratch working directory.

Each test checks the exit code, that stderr holds one `nrtjax NAME: error: ...` line and no
traceback, and what is (not) on disk afterwards: a failed run leaves no folder behind and
leaves an existing folder byte for byte as it was.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model=hopf", "stimulus.duration=2", "stimulus.fs=20", "wandb.mode=disabled"]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "HYDRA_FULL_ERROR")}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def _cli(cwd, *args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "experiments._cli", *map(str, args)], cwd=cwd,
                          env=env or _env(), capture_output=True, text=True, timeout=timeout)


def _one_error(r, name: str, code: int, *needles: str) -> str:
    """The run failed with `code` and one error line naming `needles`, no traceback."""
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith(f"nrtjax {name}: error: ")]
    assert len(errors) == 1, r.stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _snapshot(folder: Path) -> dict:
    """Every file under `folder` with its bytes and modification time."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _visible(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- 1. a failed re-run into an existing folder leaves it as it was ---------------------------
def test_failed_rerun_leaves_existing_folder_untouched(tmp_path):
    args = ["sweep", *TINY, "grid.alpha=[-0.5,-0.1]", "chunk_size=1"]
    ok = _cli(tmp_path, *args, "resume=sw")
    assert ok.returncode == 0, ok.stderr[-2000:]
    before = _snapshot(tmp_path / "sw")
    assert {"config.json", "metrics.json", "sweep.nc", ".hydra/config.yaml"} <= set(before)
    # A different sweep into the same folder is refused (bad config: exit 2) ...
    refused = _cli(tmp_path, *args[:-2], "grid.alpha=[-0.3,-0.2]", "chunk_size=1", "resume=sw")
    _one_error(refused, "sweep", 2, "holds the chunks of a different sweep")
    # ... and visual_duet with a corrupt video into an existing out= fails (bad data: exit 1).
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    prior = tmp_path / "vd"
    prior.mkdir()
    (prior / "config.json").write_text('{"earlier": "run"}')
    vd_before = _snapshot(prior)
    failed = _cli(tmp_path, "visual_duet", f"video={bad}", f"out={prior}", "wandb.mode=disabled")
    _one_error(failed, "visual_duet", 1, "bad.mp4")
    assert _snapshot(tmp_path / "sw") == before and _snapshot(prior) == vd_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "sw", "vd"]


# --- 2. a typo is an error, with or without + --------------------------------------------------
@pytest.mark.parametrize("override", ["+model.alpa=0.1", "model.alpa=0.1"])
def test_unknown_key_is_rejected_with_or_without_plus(tmp_path, override):
    r = _cli(tmp_path, "simulate", override, *TINY[1:])
    _one_error(r, "simulate", 2, "unknown key model.alpa", "did you mean model.alpha?")
    assert "To append" not in r.stderr and "+model.alpa" not in r.stderr
    assert list(tmp_path.iterdir()) == []


# --- 3. a truncated EDF is an error (or read with allow_truncated=true); warnings on stderr --
def _truncated_edf(tmp_path) -> Path:
    import jax.random as jr

    from nrtjax.eeg import io, twin

    rec = twin.simulate_twin([twin.BASELINE], seconds=12.0, key=jr.key(0))
    path = io.write_eeg(rec, tmp_path / "cut.edf")
    records, have = io.edf_records(path)
    assert records == have >= 6
    data = path.read_bytes()
    header = int(data[184:192])
    path.write_bytes(data[: header + (len(data) - header) // 3])
    records, have = io.edf_records(path)
    assert have < records
    return path


def test_truncated_edf_is_an_error(tmp_path):
    from nrtjax.eeg import io

    path = _truncated_edf(tmp_path)
    with pytest.raises(io.EEGError, match="truncated"):
        io.load_eeg(path)
    with pytest.warns(io.TruncatedFileWarning, match="analysing those only"):
        rec = io.load_eeg(path, allow_truncated=True)
    assert rec.duration < 12.0 / 3 + 1.0
    r = _cli(tmp_path, "eeg_duet", f"eeg={path}", "out=o", "wandb.mode=disabled")
    _one_error(r, "eeg_duet", 1, "cut.edf is truncated", "allow_truncated=true")
    assert "warning" not in r.stdout.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.edf"]


# --- 4. out= or resume= naming a file: a config error before any compute ---------------------
@pytest.mark.parametrize("name, args", [
    ("eeg_duet", ["out=FILE"]), ("visual_duet", ["out=FILE"]),
    ("sweep", [*TINY, "grid.alpha=[-0.5]", "resume=FILE"]),
    ("fit", ["summary=FILE", "out=FILE"]),
])
def test_out_naming_a_file_is_a_config_error(tmp_path, name, args):
    f = tmp_path / "a_file.csv"
    f.write_text("subject,smt_ms,period_ratio,asynchrony_ms\ng,500,0.7,10\n")
    start = time.perf_counter()
    r = _cli(tmp_path, name, *[a.replace("FILE", str(f)) for a in args], "wandb.mode=disabled")
    _one_error(r, name, 2, "a_file.csv is a file; give a folder")
    assert time.perf_counter() - start < 60  # no fitting first (it took 52 s)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file.csv"]


# --- 5. the last line says where every output went ----------------------------------------------
def test_last_line_lists_outputs_in_out(tmp_path):
    import soundfile as sf

    sr, seconds = 8000, 4.0
    t = np.arange(int(sr * seconds)) / sr
    song = np.zeros_like(t)
    for beat in np.arange(0.25, seconds, 0.5):
        i = int(beat * sr)
        song[i:i + 400] += np.exp(-np.arange(400) / 60.0) * np.sin(2 * np.pi * 80 * t[:400])
    sf.write(tmp_path / "song.wav", 0.8 * song / np.abs(song).max(), sr)
    r = _cli(tmp_path, "groove", "audio=song.wav", "out=g", "wandb.mode=disabled")
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("nrtjax groove: done in") and f"outputs in {tmp_path / 'g'}:" in last
    for name in ("song_beats.csv", "song_ai_drums.wav", "song_summary.json", "metrics.json",
                 "config.json"):
        assert name in last and (tmp_path / "g" / name).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g", "song.wav"]   # one folder
    summary = json.loads((tmp_path / "g" / "song_summary.json").read_text())
    assert all(Path(p).parent == tmp_path / "g" for p in summary["outputs"].values())


def _default_sigint():
    """A pytest-xdist worker ignores SIGINT, and a child inherits that (Python then installs
    no KeyboardInterrupt handler): give the job the terminal's default, as a user's has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# --- 6. Ctrl-C: one line, what was kept, the command that resumes; history kept on resume ------
def test_ctrl_c_says_how_to_resume_and_resume_finishes(tmp_path):
    # The sweep holds after its second chunk (a test setting), so the signal lands mid-run
    # however fast or loaded the machine is.
    from experiments import sweep

    args = ["sweep", "model=hopf", "grid.alpha=linspace(-1,0,300)", "stimulus.duration=100",
            "stimulus.fs=20", "chunk_size=1", "wandb.mode=disabled", "resume=run"]
    proc = subprocess.Popen([sys.executable, "-m", "experiments._cli", *args], cwd=tmp_path,
                            env=_env(NRTJAX_PROGRESS="1", **{sweep.HOLD_AFTER_ENV: "1"}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    chunks = tmp_path / ".run.partial" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(chunks.glob("sweep_chunk_*.npz"))) < 2:
        assert proc.poll() is None, "the sweep ended before the signal"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    line = [ln for ln in err.splitlines() if "interrupted" in ln]
    assert len(line) == 1 and line[0].startswith("nrtjax sweep: interrupted;"), err[-2000:]
    assert "sweep (" in err                                  # the progress bar was shown
    command = line[0].split("resume with: ", 1)[1].rstrip(".")
    assert command.startswith("nrtjax sweep ") and command.endswith(f"resume={tmp_path / 'run'}")
    assert not (tmp_path / "run").exists()
    import shlex

    resumed = _cli(tmp_path, *shlex.split(command)[1:])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["chunks"] == 300 and metrics["chunks_resumed"] == 2
    assert not (tmp_path / ".run.partial").exists()


@pytest.mark.slow  # two train_surrogate processes (261 s on the loaded 2-core dev machine)
def test_resumed_training_keeps_its_whole_history(tmp_path):
    small = ["data.n_train=2", "data.n_heldout=1", "data.n_val=1", "data.duration=6",
             "data.fs=32", "data.cache_dir=null", "model.hidden=4", "model.n_blocks=1",
             "model.heads=0", "model.window=8", "optim.crop=64", "optim.warm=16",
             "optim.batch_size=2", "optim.checkpoint_every=5", "progress=false",
             "wandb.mode=disabled", "resume=t"]
    first = _cli(tmp_path, "train_surrogate", *small, "optim.steps=10")
    assert first.returncode == 0, first.stderr[-2000:]
    m1 = json.loads((tmp_path / "t" / "metrics.json").read_text())
    second = _cli(tmp_path, "train_surrogate", *small, "optim.steps=20")
    assert second.returncode == 0, second.stderr[-2000:]
    m2 = json.loads((tmp_path / "t" / "metrics.json").read_text())
    curve = json.loads((tmp_path / "t" / "loss_curve.json").read_text())
    assert [p["step"] for p in curve] == [10, 20]
    assert m2["train_seconds"] > m1["train_seconds"] > 0


# --- 7. every config check: exit 2, one line, before anything (also --cfg job and multirun) ---
@pytest.mark.parametrize("name, args, needle", [
    ("train_surrogate", ["optim.crop=100000"], "optim.crop=100000 is longer than a song"),
    ("train_surrogate", ["model.hidden=30", "model.heads=4"], "must be divisible by"),
    ("simulate", ["--cfg", "job", "model.eps=3"], "model.eps=3.0 is out of range"),
    ("simulate", ["-m", *TINY[:-1], "model.freq=1,50"], "multirun member 1"),
])
def test_config_errors_exit_2_before_anything(tmp_path, name, args, needle):
    r = _cli(tmp_path, name, *args, "wandb.mode=disabled")
    _one_error(r, name, 2, needle)
    assert r.stdout == "" and list(tmp_path.iterdir()) == []


# --- 8. honest messages for input files ------------------------------------------------------
def test_input_file_messages(tmp_path):
    (tmp_path / "model.eqx").write_bytes(b"\x00" * 64)
    (tmp_path / "rec.txt").write_text("1 2 3\n")
    (tmp_path / "folder").mkdir()
    cases = [
        ("evaluate_surrogate", ["checkpoint=model.eqx"],
         "checkpoint=model.eqx exists, but model.json (its companion file) is missing"),
        ("eeg_duet", ["eeg=folder"], "eeg=folder is a folder; give a file"),
        ("eeg_duet", ["eeg=rec.txt"], "eeg=rec.txt is not a supported file type"),
        ("eeg_duet", ["block_s=0.013"], "block_s=0.013 must be a multiple of 1/200 s"),
        ("eeg_duet", ["eeg=nope.edf"], "eeg=nope.edf: file not found"),
    ]
    for name, args, needle in cases:
        start = time.perf_counter()
        r = _cli(tmp_path, name, *args, "wandb.mode=disabled")
        _one_error(r, name, 2, needle)
        assert time.perf_counter() - start < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "model.eqx", "rec.txt"]


def test_duet_block_check_matches_the_engine():
    from experiments import duet, eeg_duet
    from nrtjax.audio.duet import DuetEngine

    import inspect

    default = inspect.signature(DuetEngine).parameters["fs_sim"].default
    assert duet.CONTROL_HZ == eeg_duet.CONTROL_HZ == default == DuetEngine().fs_sim


# --- 9. start-up: --help and config errors without JAX --------------------------------------
CHECK_IMPORTS = """
import sys
from experiments import _cli
try:
    _cli.main(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'mne', 'librosa', 'cv2', 'diffrax'})
print('CODE', code, 'HEAVY', heavy, file=sys.stderr)
"""


@pytest.mark.parametrize("args, code", [
    (["simulate", "--help"], 0), (["simulate", "model.eps=3"], 2),
    (["eeg_duet", "block_s=0.013"], 2), (["fit", "--help"], 0), (["groove", "audio=x.wav"], 2),
])
def test_help_and_config_errors_do_not_import_jax(tmp_path, args, code):
    r = subprocess.run([sys.executable, "-c", CHECK_IMPORTS, *args], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=120)
    assert f"CODE {code} HEAVY []" in r.stderr, r.stderr[-2000:]


def test_job_help_names_the_job_and_real_choices(tmp_path):
    r = _cli(tmp_path, "simulate", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("nrtjax simulate: Simulate one model")
    assert "_schema" not in r.stdout and "powered by Hydra" not in r.stdout
    assert "  model: ashle, grfnn, hopf, lorenz" in r.stdout
    assert "  solver: dopri5, euler, heun, midpoint, rk4, tsit5" in r.stdout
    assert "tail: 0.25" in r.stdout


# --- 10. progress, failed members, known warnings, no folders from failed runs ----------------
def test_sweep_lists_and_marks_failed_members(tmp_path):
    # Hopf with beta > 0 and alpha > 0 blows up in finite time: those members fail.
    r = _cli(tmp_path, "sweep", "model=hopf", "model.alpha=1", "grid.beta=[-1,1]",
             "grid.freq=[1,2]", "stimulus.duration=20", "stimulus.fs=20",
             "wandb.mode=disabled", "resume=s")
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["members_failed"] == 2
    assert sorted(tuple(sorted(m.items())) for m in metrics["failed_members"]) == [
        (("beta", 1.0), ("freq", 1.0)), (("beta", 1.0), ("freq", 2.0))]
    assert "nrtjax sweep: warning: 2 member(s) failed" in r.stderr and "beta=1" in r.stderr


def test_known_warning_silenced_and_failed_run_leaves_no_folder(tmp_path):
    r = _cli(tmp_path, "simulate", "solver=tsit5", *TINY)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Complex dtype" not in r.stderr + r.stdout
    assert r.stdout.strip().splitlines()[-1].startswith("nrtjax simulate: done in")
    (tmp_path / "outputs").rename(tmp_path / "kept")
    bad = tmp_path / "taps.csv"
    bad.write_text("subject,trial,smt_ms,period_ms,tap_s\ns,a,500,400,x\n")
    r = _cli(tmp_path, "fit", "taps=taps.csv", "wandb.mode=disabled")
    _one_error(r, "fit", 1, "'x' is not a number")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "taps.csv"]


def test_long_phases_show_progress(tmp_path):
    r = _cli(tmp_path, "evaluate_surrogate", "data.n_heldout=1", "data.duration=6",
             "data.cache_dir=null", "wandb.mode=disabled", "resume=e",
             env=_env(NRTJAX_PROGRESS="1"))
    assert r.returncode == 0, r.stderr[-2000:]
    for phase in ("held-out songs and their ASHLE ground truth", "evaluating"):
        assert f"evaluate_surrogate: {phase}" in r.stderr
    assert "nrtjax evaluate_surrogate: done in" in r.stdout


def test_demo_as_a_subprocess_uses_real_modules(tmp_path):
    """`nrtjax demo` checks its config with heavy modules as placeholders, then imports the
    job for real; the duet module it imports (`from experiments import duet`) must be the
    real one too, or its writes are placeholders and duet.wav never appears."""
    r = _cli(tmp_path, "demo", "clip_seconds=6", "duet_seconds=2", "wandb.mode=disabled",
             "resume=d")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "d" / "duet.wav").is_file() and (tmp_path / "d" / "groove").is_dir()
