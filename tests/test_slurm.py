"""The SLURM launcher on a real SLURM: results equal a local run, a requeue resumes, an
impossible request fails fast; plus the preview script and the request check's parsers.

The cluster tests need a running SLURM (`scripts/slurm_local.sh start`, as `.ci/run` does)
and skip with the reason otherwise; with NRTJAX_REQUIRE_SLURM=1 (set by .ci/run) a missing
cluster fails them instead. They run the `nrtjax` command line in subprocesses, as a user
does, in a temporary directory (the jobs' working directory).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hydra_plugins.nrtjax_launcher import launcher as nl

from .helpers import load_script


ROOT = Path(__file__).resolve().parent.parent

# The docs' cluster command (docs/sweeps.md) without and with the SLURM launcher.
DOCS_MULTIRUN = ["sweep", "-m", "experiment=alpha_beta_map", "model.n=9,17", "stimulus.duration=5"]
# A one-member multirun of many small chunks, for the requeue.
# (about 2 s a chunk: the job stops within a chunk of the SIGTERM, while chunks remain).
REQUEUE_RUN = ["sweep", "-m", "grid.alpha=linspace(-1,0.5,6)", "chunk_size=1", "model.n=257",
               "stimulus.duration=240", "stimulus.fs=128"]
# Outputs compared byte for byte; metrics.json is compared without its timings.
SAME_BYTES = ("sweep.nc", "heatmap.png")
TIMINGS = ("compute_seconds", "members_per_second", "chunks_resumed")


def _slurm_state() -> str:
    """'' if a SLURM cluster with a usable node answers, else why not."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM client (sinfo/sbatch) on PATH"
    try:
        r = subprocess.run(["sinfo", "--noheader", "--format", "%T"], capture_output=True,
                           text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 20 s"
    if r.returncode != 0:
        return f"sinfo failed: {(r.stderr.strip().splitlines() or [''])[-1][:200]}"
    if not any(s.startswith(("idle", "mix", "alloc")) for s in r.stdout.split()):
        return f"no usable SLURM node (states: {r.stdout.split()})"
    return ""


@pytest.fixture(scope="module")
def slurm():
    """Skip (or, with NRTJAX_REQUIRE_SLURM=1, fail) unless a SLURM cluster answers."""
    why = _slurm_state()
    if why and os.environ.get("NRTJAX_REQUIRE_SLURM") == "1":
        pytest.fail(f"NRTJAX_REQUIRE_SLURM=1 but {why}")
    if why:
        pytest.skip(f"no SLURM cluster: {why} (start one with `sudo scripts/slurm_local.sh "
                    "start`)")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(PYTHONPATH=str(ROOT), WANDB_MODE="offline", MPLBACKEND="Agg")
    return env


def _nrtjax(args, cwd, timeout=240, **kw):
    return subprocess.run([sys.executable, "-m", "experiments._cli", *args], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=timeout, **kw)


def _sweep_dir(cwd: Path, *, staging: bool = False) -> Path:
    """The multirun's sweep folder, or while it runs its staging folder `.NAME.partial`."""
    (d,) = [d for d in (cwd / "multirun" / "sweep").iterdir()
            if d.name.endswith(".partial") == staging]
    return d


def _assert_same_results(got: Path, want: Path):
    for name in SAME_BYTES:
        assert (got / name).read_bytes() == (want / name).read_bytes(), f"{got / name} differs"
    mg, mw = (json.loads((d / "metrics.json").read_text()) for d in (got, want))
    for m in (mg, mw):
        for k in TIMINGS:
            m.pop(k, None)
    assert mg == mw


@pytest.fixture(scope="module")
def local_runs(slurm, tmp_path_factory):
    """The docs' multirun and the requeue run, each run locally (Hydra's basic launcher)."""
    out = {}
    procs = {}
    for name, args in (("docs", DOCS_MULTIRUN), ("requeue", REQUEUE_RUN)):
        cwd = tmp_path_factory.mktemp(f"local_{name}")
        procs[name] = (cwd, subprocess.Popen(
            [sys.executable, "-m", "experiments._cli", *args], cwd=cwd, env=_env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for name, (cwd, p) in procs.items():
        text, _ = p.communicate(timeout=300)
        assert p.returncode == 0, text[-3000:]
        out[name] = _sweep_dir(cwd)
    return out


# --- on a real cluster --------------------------------------------------------------------
def test_docs_multirun_on_slurm_equals_local_run(slurm, tmp_path, local_runs):
    r = _nrtjax([*DOCS_MULTIRUN, "hydra/launcher=submitit_slurm"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    sweep = _sweep_dir(tmp_path)
    for i in (0, 1):
        _assert_same_results(sweep / str(i), local_runs["docs"] / str(i))
        # Job logging goes to stderr (submitit's log), so no `_job.log` / `sweep.log` files.
        assert not list((sweep / str(i)).glob("*.log"))
    # Two members: one job array, named after the job; the preview prints its script.
    (array_dir,) = [d for d in (sweep / ".submitit").iterdir() if d.name.isdigit()]
    script = (array_dir / f"{array_dir.name}_submission.sh").read_text()
    assert "#SBATCH --array=0-1%2" in script and "#SBATCH --job-name=nrtjax-sweep" in script
    assert "--partition" not in script and "--gpus" not in script
    preview = subprocess.run([sys.executable, str(ROOT / "scripts" / "slurm_preview.py"),
                              "sweep", *DOCS_MULTIRUN[2:]], cwd=tmp_path, env=_env(),
                             capture_output=True, text=True, timeout=120)
    assert preview.returncode == 0, preview.stderr[-2000:]
    shown = preview.stdout.split("\n", 1)[1]
    previewed_dir = re.search(r"--output=(\S+)/\.submitit/", shown).group(1)
    assert shown.replace(previewed_dir, "SWEEP").strip() == \
        script.replace(str(sweep.parent.resolve() / f".{sweep.name}.partial"), "SWEEP").strip()


def test_requeued_job_resumes_its_chunks_and_wandb_run(slurm, tmp_path, local_runs):
    p = subprocess.Popen([sys.executable, "-m", "experiments._cli", *REQUEUE_RUN,
                          "hydra/launcher=submitit_slurm"], cwd=tmp_path, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        chunks = []
        while not chunks and time.monotonic() < deadline and p.poll() is None:
            chunks = list(tmp_path.glob("multirun/sweep/*/.0.partial/checkpoints/sweep_chunk_*.npz"))
            time.sleep(0.1)
        assert chunks, "no chunk was written (or the run ended first)"
        staged = _sweep_dir(tmp_path, staging=True)
        (job_id,) = [d.name for d in (staged / ".submitit").iterdir() if d.name.isdigit()]
        subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=30)
        text, _ = p.communicate(timeout=240)
    finally:
        if p.poll() is None:
            p.kill()
            subprocess.run(["scancel", "--name=nrtjax-sweep"], timeout=30)
    assert p.returncode == 0, text[-3000:]
    run_dir = _sweep_dir(tmp_path) / "0"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 1 <= metrics["chunks_resumed"] < metrics["chunks"] == 6, metrics
    _assert_same_results(run_dir, local_runs["requeue"] / "0")
    # Both attempts logged to one wandb run (same id: `wandb sync` merges them).
    from experiments._job import wandb_run_id

    attempts = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2, attempts
    assert {a.name.split("-", 3)[-1] for a in attempts} == {wandb_run_id("sweep", run_dir)}
    logs = "".join(f.read_text() for f in (_sweep_dir(tmp_path) / ".submitit").rglob("*_log.*"))
    assert "DUE TO JOB REQUEUE" in logs and "Traceback" not in logs, logs[-3000:]


def test_impossible_request_fails_fast_naming_the_resource(slurm, tmp_path):
    # (a CPU-only cluster asked for a GPU; the other resources: test_partition_check_...)
    override, resource = "hydra.launcher.gpus_per_node=1", "GPUs per node"
    start = time.monotonic()
    r = _nrtjax([*DOCS_MULTIRUN, "hydra/launcher=submitit_slurm", override], cwd=tmp_path,
                timeout=120)
    took = time.monotonic() - start
    assert r.returncode == 2 and took < 60, (took, r.stderr[-2000:])
    assert resource in r.stderr and override.split("=")[0] in r.stderr, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.glob("multirun/sweep/*/.submitit/*")), "something was submitted"


def test_job_that_cannot_start_stops_the_wait_with_ids_and_scancel(slurm, tmp_path):
    """Without the check, SLURM queues a job no node can run (reason PartitionConfig); the
    launcher must not wait forever on it."""
    r = _nrtjax([*DOCS_MULTIRUN, "hydra/launcher=submitit_slurm",
                 "hydra.launcher.check_request=false", "hydra.launcher.cpus_per_task=100000"],
                cwd=tmp_path, timeout=120)
    ids = [d.name for d in tmp_path.glob("multirun/sweep/*/.submitit/*") if d.name.isdigit()]
    for job in ids:
        subprocess.run(["scancel", job], timeout=30)
    assert r.returncode == 2 and len(ids) == 1, r.stderr[-2000:]
    assert "cannot start" in r.stderr and "PartitionConfig" in r.stderr, r.stderr[-2000:]
    assert f"scancel {ids[0]}" in r.stderr and f"{ids[0]}_0" in r.stderr


# --- without a cluster --------------------------------------------------------------------
def _preview_module():
    return load_script("slurm_preview")


def test_preview_defaults_run_anywhere_and_gpu_preset():
    sbatch_text = _preview_module().sbatch_text

    def preview(*args):
        text, n = sbatch_text(args[0], list(args[1:]))
        return {line.split("=", 1)[0].removeprefix("#SBATCH "): line.split("=", 1)[1]
                for line in text.splitlines() if line.startswith("#SBATCH --")}

    one = preview("sweep", "experiment=alpha_beta_map")
    assert "--array" not in one       # a single-member multirun is one plain job
    assert one["--job-name"] == "nrtjax-sweep" and one["--cpus-per-task"] == "1"
    assert one["--mem"] == "4GB" and one["--time"] == "60"
    assert not {"--partition", "--gpus-per-node", "--gres"} & set(one)
    three = preview("sweep", "model.n=9,17,33", "hydra.launcher.array_parallelism=2")
    assert three["--array"] == "0-2%2"
    gpu = preview("sweep", "hydra/launcher=submitit_slurm_gpu", "hydra.launcher.gpus_per_node=4",
                  "hydra.launcher.partition=gpu")
    assert gpu["--gpus-per-node"] == "4" and gpu["--partition"] == "gpu"


def test_time_and_gres_parsers():
    assert nl._minutes("UNLIMITED") is None
    assert nl._minutes("30") == 30
    assert nl._minutes("01:30:00") == 90
    assert nl._minutes("2-00:00:00") == 2 * 24 * 60
    assert nl._minutes("10:30") == 10.5
    assert nl._gpu_count("(null)") == 0
    assert nl._gpu_count("gpu:4") == 4
    assert nl._gpu_count("gpu:a100:4(S:0-1),gpu:v100:2") == 6
    assert nl._gpu_count("nic:1,gpu:tesla:2(S:0)") == 2
    assert nl._gpu_count("mps:100") == 0


def test_partition_check_names_the_resource():
    nodes = [{"NodeName": "a", "Partitions": "cpu", "CPUTot": "16", "RealMemory": "64000",
              "Gres": "(null)", "AvailableFeatures": "zen4"},
             {"NodeName": "g", "Partitions": "gpu", "CPUTot": "32", "RealMemory": "256000",
              "Gres": "gpu:h100:4", "AvailableFeatures": "(null)"}]
    cpu = {"PartitionName": "cpu", "MaxTime": "1-00:00:00"}
    gpu = {"PartitionName": "gpu", "MaxTime": "UNLIMITED"}
    base = dict(timeout_min=60, tasks_per_node=1, cpus_per_task=4, mem_gb=4, nodes=1)
    assert nl._check_partition(base, cpu, nodes) == ""
    assert "GPUs per node" in nl._check_partition({**base, "gpus_per_node": 1}, cpu, nodes)
    assert nl._check_partition({**base, "gpus_per_node": 4}, gpu, nodes) == ""
    assert "GPUs per node" in nl._check_partition({**base, "gpus_per_node": 8}, gpu, nodes)
    assert "CPUs per node" in nl._check_partition({**base, "cpus_per_task": 17}, cpu, nodes)
    assert "memory" in nl._check_partition({**base, "mem_gb": 63}, cpu, nodes)  # 64512 MB
    assert "MaxTime" in nl._check_partition({**base, "timeout_min": 1441}, cpu, nodes)
    assert "features" in nl._check_partition({**base, "constraint": "zen5"}, cpu, nodes)
    assert nl._check_partition({**base, "constraint": "zen4"}, cpu, nodes) == ""
    assert "2 node(s)" in nl._check_partition({**base, "nodes": 2}, cpu, nodes)
