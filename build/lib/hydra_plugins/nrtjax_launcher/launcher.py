"""nrtjax's SLURM launcher: Hydra's submitit launcher with a request check and a bounded wait.

`hydra/launcher=submitit_slurm` (conf/hydra/launcher/submitit_slurm.yaml) selects
`NrtSlurmLauncher`, a subclass of the hydra-submitit-launcher plugin's `SlurmLauncher`. The
jobs themselves run exactly as the plugin runs them (its `__call__` recomposes each job's
config on the node and calls the job); what changes is the submitting side:

- Before anything is submitted, the request (partition, CPUs, memory, GPUs, time, node
  features, node count) is compared with what the cluster has (`scontrol show partition`,
  `scontrol show node`). If no node of the partition can ever run it, the launcher stops at
  once with a message naming the resource and the setting to change.
- While waiting, the jobs are followed with `squeue` (submitit follows them with `sacct`,
  which needs SLURM accounting). A job that SLURM reports as impossible to start (e.g.
  `PartitionConfig`, `BadConstraints`) or a submission whose jobs have all been pending for
  `pending_timeout_min` without any of them starting stops the wait with the job ids and the
  `scancel` command; a job that left the queue without a result is reported with its log.
- When submitit checkpoints a job before its time limit (it then requeues it), the job's
  wandb run is marked as preempting and closed, so the requeued job resumes the same run
  (experiments/_job.py derives the run id from the job's output directory).

The executor is built by `make_executor`, shared with scripts/slurm_preview.py, so the preview
prints the sbatch script submitit itself writes.
"""

import dataclasses
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


log = logging.getLogger(__name__)

_OWN_KEYS = ("pending_timeout_min", "check_request")


@dataclasses.dataclass
class NrtSlurmQueueConf(SlurmQueueConf):
    """The plugin's SLURM settings plus nrtjax's two (documented in submitit_slurm.yaml)."""

    _target_: str = "hydra_plugins.nrtjax_launcher.launcher.NrtSlurmLauncher"
    # Stop waiting when every unfinished job has been PENDING this long with none of them
    # starting or finishing meanwhile (None: wait as long as SLURM keeps them queued).
    pending_timeout_min: Optional[float] = 60.0
    # Compare the request with the cluster's nodes before submitting.
    check_request: bool = True


def register_schema() -> None:
    """Make `hydra/launcher=submitit_slurm` validate against `NrtSlurmQueueConf`."""
    ConfigStore.instance().store(group="hydra/launcher", name="submitit_slurm",
                                 node=NrtSlurmQueueConf, provider="nrtjax")


class NrtjaxLauncherSchema(SearchPathPlugin):
    """Registers `NrtSlurmQueueConf` once Hydra has scanned its plugins.

    conf/hydra/launcher/submitit_slurm.yaml keeps the plugin's name (so the familiar
    `hydra/launcher=submitit_slurm` selects it) and Hydra validates a config file against
    the ConfigStore schema of the same name. The plugin stores its own `SlurmQueueConf`
    there when Hydra imports it during the plugin scan, in an order that depends on
    `sys.path`; search-path plugins are called after that scan and before any config is
    composed, so storing ours here always wins. The search path itself is left alone.
    """

    def manipulate_search_path(self, search_path) -> None:
        register_schema()


register_schema()


class SlurmLauncherError(RuntimeError):
    """A SLURM request that cannot run, or jobs that cannot start or ended without a result."""


# --- the executor, as submitit builds it -------------------------------------------------
_GENERIC = {f.name for f in dataclasses.fields(BaseQueueConf)} - {"submitit_folder"}


def make_executor(params: dict, executor_cls=None):
    """A submitit `SlurmExecutor` configured from the launcher's settings.

    The generic settings (`timeout_min`, `mem_gb`, `cpus_per_task`, `gpus_per_node`, ...)
    go through the executor's own `_convert_parameters` (as `submitit.AutoExecutor` does),
    the SLURM-specific ones pass as they are; unset (None) settings are left out.
    `executor_cls` defaults to submitit's `SlurmExecutor`.
    """
    from submitit import SlurmExecutor

    cls = SlurmExecutor if executor_cls is None else executor_cls
    executor = cls(folder=params["submitit_folder"], max_num_timeout=params["max_num_timeout"])
    skip = {"submitit_folder", "max_num_timeout", "_target_", *_OWN_KEYS}
    settings = {k: v for k, v in params.items() if k not in skip and v is not None}
    generic = executor._convert_parameters({k: v for k, v in settings.items() if k in _GENERIC})
    specific = {k: v for k, v in settings.items() if k not in _GENERIC}
    executor.update_parameters(**generic, **specific)
    return executor


# --- what the cluster has ----------------------------------------------------------------
def _scontrol_records(kind: str) -> list[dict[str, str]]:
    out = subprocess.run(["scontrol", "show", kind, "--oneliner"], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        raise SlurmLauncherError(f"`scontrol show {kind}` failed: {out.stderr.strip()}")
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.stdout.splitlines()
            if line.strip()]


def _minutes(text: str) -> float | None:
    """SLURM's time format ([D-]HH:MM:SS, MM:SS, MM) in minutes; None for UNLIMITED."""
    if text.upper() in ("UNLIMITED", "INFINITE", "NONE", ""):
        return None
    days, _, rest = text.rpartition("-")
    parts = [float(p) for p in rest.split(":")]
    if len(parts) == 1:
        mins = parts[0]
    elif len(parts) == 2:
        mins = parts[0] + parts[1] / 60   # MM:SS
    else:
        mins = parts[0] * 60 + parts[1] + parts[2] / 60
    return mins + (float(days) * 1440 if days else 0.0)


def _gpu_count(gres: str | None) -> int:
    """GPUs in a node's or a request's gres string, e.g. 'gpu:a100:4(S:0-1),nic:1' -> 4."""
    if not gres or gres == "(null)":
        return 0
    return sum(int(n) for n in re.findall(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)", gres))


def _requested_gpus(p: dict) -> tuple[int, str]:
    tasks = p.get("tasks_per_node") or 1
    if p.get("gpus_per_node"):
        g = p["gpus_per_node"]
        n = int(str(g).rsplit(":", 1)[-1])
        return n, f"hydra.launcher.gpus_per_node={g}"
    if p.get("gpus_per_task"):
        return int(p["gpus_per_task"]) * tasks, (
            f"hydra.launcher.gpus_per_task={p['gpus_per_task']} x tasks_per_node={tasks}")
    if p.get("gres") and _gpu_count(p["gres"]):
        return _gpu_count(p["gres"]), f"hydra.launcher.gres={p['gres']}"
    return 0, ""


def check_request(params: dict) -> str:
    """Raise SlurmLauncherError unless some node of the partition can run one job.

    Returns the partition checked. Compares: partition existence and `MaxTime`, the node
    count, and per node CPUs (`tasks_per_node * cpus_per_task`), memory (`mem_gb`), GPUs
    (`gpus_per_node`, `gpus_per_task` or a `gpu` gres) and plain `constraint` features.
    """
    partitions = _scontrol_records("partition")
    names = [r.get("PartitionName", "") for r in partitions]
    asked = params.get("partition")
    if asked:
        wanted = [s for s in str(asked).split(",") if s]
        unknown = [s for s in wanted if s not in names]
        if unknown:
            raise SlurmLauncherError(
                f"partition {unknown[0]!r} does not exist on this cluster (partitions: "
                f"{_partition_list(partitions)}). Set hydra.launcher.partition to one of them, "
                f"or leave it null for the cluster's default.")
        chosen = [r for r in partitions if r["PartitionName"] in wanted]
    else:
        chosen = [r for r in partitions if r.get("Default") == "YES"]
        if not chosen:
            raise SlurmLauncherError(
                f"no partition given and the cluster has no default partition (partitions: "
                f"{_partition_list(partitions)}). Set hydra.launcher.partition.")
    nodes = _scontrol_records("node")
    failures = [_check_partition(params, part, nodes) for part in chosen]
    if all(failures):
        raise SlurmLauncherError(" Also: ".join(failures))
    return chosen[failures.index("")]["PartitionName"]


def _partition_list(partitions) -> str:
    return ", ".join(r.get("PartitionName", "?") + (" (default)" if r.get("Default") == "YES"
                                                   else "") for r in partitions) or "none"


def _check_partition(p: dict, part: dict, nodes: list[dict]) -> str:
    """'' if some nodes of `part` can run the job, else the reason (naming the resource)."""
    name = part["PartitionName"]
    where = f"partition {name!r}"
    limit = _minutes(part.get("MaxTime", "UNLIMITED"))
    if limit is not None and p["timeout_min"] > limit:
        return (f"the time limit asked, {p['timeout_min']} min (hydra.launcher.timeout_min), "
                f"exceeds {where}'s MaxTime of {limit:g} min. Lower hydra.launcher.timeout_min "
                f"(long sweeps resume from their chunks when requeued).")
    members = [n for n in nodes if name in n.get("Partitions", "").split(",")]
    if not members:
        return f"{where} has no nodes."
    tasks = p.get("tasks_per_node") or 1
    cpus = tasks * (p.get("cpus_per_task") or 1)
    gpus, gpu_key = _requested_gpus(p)
    mem_mb = p["mem_gb"] * 1024 if p.get("mem_gb") else None
    features = _plain_features(p.get("constraint"))
    checks = [  # (resource, asked, what each node has, setting, fits)
        ("CPUs per node", cpus, lambda n: int(n.get("CPUEfctv") or n.get("CPUTot") or 0),
         f"hydra.launcher.cpus_per_task={p.get('cpus_per_task') or 1} x tasks_per_node={tasks}"),
    ]
    if mem_mb is not None:
        checks.append(("memory per node (MB)", mem_mb, lambda n: int(n.get("RealMemory") or 0),
                       f"hydra.launcher.mem_gb={p['mem_gb']}"))
    if gpus:
        checks.append(("GPUs per node", gpus, lambda n: _gpu_count(n.get("Gres")), gpu_key))
    reasons = []
    for resource, want, have, setting in checks:
        best = max(members, key=have)
        if have(best) < want:
            none = (f"no node in {where} has any" if have(best) == 0 else
                    f"the largest node in {where} has {have(best):g} ({best.get('NodeName')})")
            hint = (" Drop the GPU request (hydra/launcher=submitit_slurm asks for none) or "
                    "pick a partition with GPUs (hydra.launcher.partition=...)."
                    if resource.startswith("GPU") else f" Lower it ({setting.split('=')[0]}).")
            reasons.append(f"the job asks for {want:g} {resource} ({setting}) but {none}.{hint}")
    if features:
        have_all = [n for n in members if features <= _node_features(n)]
        if not have_all:
            reasons.append(f"no node in {where} has the features {sorted(features)} "
                           f"(hydra.launcher.constraint={p['constraint']}).")
    if reasons:
        return " ".join(reasons)
    fit = [n for n in members if all(have(n) >= want for _, want, have, _ in checks)
           and features <= _node_features(n)]
    want_nodes = p.get("nodes") or 1
    if len(fit) < want_nodes:
        return (f"the job asks for {want_nodes} node(s) (hydra.launcher.nodes) with "
                f"{cpus} CPUs" + (f", {mem_mb:g} MB" if mem_mb else "")
                + (f", {gpus} GPUs" if gpus else "")
                + f" each, but only {len(fit)} node(s) of {where} have that much.")
    return ""


def _plain_features(constraint) -> set[str]:
    """Feature names of a constraint made only of names joined by '&' (others unchecked)."""
    if not constraint or re.search(r"[|\[\]*()!]", str(constraint)):
        return set()
    return {f for f in str(constraint).split("&") if f}


def _node_features(node: dict) -> set[str]:
    text = node.get("AvailableFeatures") or ""
    return set() if text == "(null)" else set(text.split(","))


# --- following the jobs ------------------------------------------------------------------
# squeue reasons under which a pending job will not start without someone changing the
# job or the cluster (https://slurm.schedmd.com/squeue.html#SECTION_JOB-REASON-CODES).
NEVER_STARTS = {
    "PartitionConfig", "BadConstraints", "PartitionNodeLimit", "PartitionTimeLimit",
    "InvalidAccount", "InvalidQOS", "DependencyNeverSatisfied", "JobHeldAdmin",
    "QOSMaxCpuPerJobLimit", "QOSMaxGRESPerJob", "QOSMaxMemoryPerJob", "QOSMaxNodePerJobLimit",
    "QOSMaxWallDurationPerJobLimit", "AssocMaxCpuPerJobLimit", "AssocMaxGRESPerJob",
    "AssocMaxMemPerJob", "AssocMaxNodePerJobLimit", "AssocMaxWallDurationPerJobLimit",
}


def _queue_states(job_ids: Sequence[str]) -> dict[str, tuple[str, str]] | None:
    """{job id: (state, reason)} for the jobs still in the queue; None if squeue failed."""
    mains = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = subprocess.run(["squeue", "--noheader", "--array", "--jobs", ",".join(mains),
                              "--format", "%i|%T|%r"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        # squeue fails for ids SLURM has already forgotten (MinJobAge): then none is queued.
        return {} if "Invalid job id" in out.stderr else None
    states = {}
    for line in out.stdout.splitlines():
        jid, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        states[jid] = (state, reason)
    return states


def _cancel_hint(job_ids: Sequence[str]) -> str:
    return "scancel " + " ".join(sorted({j.split("_")[0] for j in job_ids}))


def wait_for_jobs(jobs: list, pending_timeout_min: float | None, poll_s: float = 2.0,
                  result_grace_s: float = 30.0) -> None:
    """Return once every job has written its result; raise SlurmLauncherError when a job
    cannot start, the submission stalls in PENDING, or a job ends without a result."""
    ids = [j.job_id for j in jobs]
    last_change = time.monotonic()
    seen: dict[str, tuple[str, str]] = {}
    never_count: dict[str, int] = {}
    gone_since: dict[str, float] = {}
    while True:
        open_jobs = [j for j in jobs if not j.paths.result_pickle.exists()]
        if not open_jobs:
            return
        states = _queue_states([j.job_id for j in open_jobs])
        if states is not None:
            now = time.monotonic()
            for j in open_jobs:
                state = states.get(j.job_id)
                if state is None:   # left the queue: its result should appear shortly
                    gone_since.setdefault(j.job_id, now)
                    if now - gone_since[j.job_id] > result_grace_s:
                        raise SlurmLauncherError(_ended_without_result(j, seen.get(j.job_id)))
                    continue
                gone_since.pop(j.job_id, None)
                if seen.get(j.job_id, ("",))[0] != state[0]:
                    last_change = now
                seen[j.job_id] = state
                if state[0] == "PENDING" and state[1] in NEVER_STARTS:
                    never_count[j.job_id] = never_count.get(j.job_id, 0) + 1
                    if never_count[j.job_id] >= 2:   # seen twice: not a passing state
                        raise SlurmLauncherError(
                            f"SLURM job {j.job_id} cannot start: it is PENDING with reason "
                            f"{state[1]} (see `squeue -j {j.job_id.split('_')[0]}`), which does not "
                            f"clear by waiting. Jobs of this submission: {', '.join(ids)}; "
                            f"they are still queued: cancel them with `{_cancel_hint(ids)}`.")
            waiting = [states.get(j.job_id) for j in open_jobs]
            stalled = all(s is not None and s[0] == "PENDING" for s in waiting)
            if (stalled and pending_timeout_min is not None
                    and now - last_change > 60 * pending_timeout_min):
                reasons = sorted({s[1] for s in waiting if s is not None})
                raise SlurmLauncherError(
                    f"SLURM jobs {', '.join(j.job_id for j in open_jobs)} have been PENDING for "
                    f"{pending_timeout_min:g} min without any of them starting (reasons: "
                    f"{', '.join(reasons)}); stopped waiting (hydra.launcher.pending_timeout_min). "
                    f"They are still queued: cancel them with `{_cancel_hint(ids)}`, or collect "
                    f"their outputs in the sweep directory once they have run.")
        time.sleep(poll_s)


def _ended_without_result(job, last: tuple[str, str] | None) -> str:
    state = f" (last seen {last[0]})" if last else ""
    msg = f"SLURM job {job.job_id} left the queue without a result{state}."
    for path in (job.paths.stderr, job.paths.stdout):
        if path.exists():
            tail = path.read_text(errors="replace").splitlines()[-20:]
            msg += f"\nLast lines of {path}:\n" + "\n".join(tail)
            break
    else:
        msg += f" It wrote no log ({job.paths.stderr}): is the folder on a shared filesystem?"
    return msg


# --- the launcher ------------------------------------------------------------------------
class NrtSlurmLauncher(SlurmLauncher):
    """`SlurmLauncher` with a request check before submitting and a bounded wait after."""

    def __init__(self, pending_timeout_min: float | None = 60.0, check_request: bool = True,
                 **params: Any) -> None:
        super().__init__(**params)
        self.pending_timeout_min = pending_timeout_min
        self.check_request = check_request

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        try:
            return self._launch(job_overrides, initial_job_idx)
        except SlurmLauncherError as e:
            print(f"nrtjax (hydra/launcher=submitit_slurm): {e}", file=sys.stderr)
            sys.exit(2)

    def _launch(self, job_overrides, initial_job_idx):
        assert self.config is not None
        if shutil.which("sbatch") is None:
            raise SlurmLauncherError("no `sbatch` on PATH: this machine is not a SLURM login "
                                     "node. Run the same pipeline here with "
                                     "hydra/launcher=submitit_local.")
        if self.check_request:
            partition = check_request(self.params)
            log.info(f"SLURM request fits partition {partition!r}")
        executor = make_executor(self.params)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"Submitit 'slurm' sweep output dir : {sweep_dir}")
        calls = []
        for i, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{i} : {' '.join(filter_overrides(overrides))}")
            calls.append((list(overrides), "hydra.sweep.dir", i, f"job_id_for_{i}",
                          Singleton.get_state()))
        jobs = executor.map_array(self, *zip(*calls))
        ids = [j.job_id for j in jobs]
        log.info(f"submitted SLURM job(s) {', '.join(ids)}; waiting for them "
                 f"(cancel: {_cancel_hint(ids)})")
        wait_for_jobs(jobs, self.pending_timeout_min)
        return [j.results()[0] for j in jobs]

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """Run one job on its node (as the plugin does), stopping at once on SIGTERM."""
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        return super().__call__(*args, **kwargs)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit in the job before it requeues it (time limit or preemption)."""
        _close_wandb_for_requeue()
        return super().checkpoint(*args, **kwargs)


def _stop_on_sigterm(signum, frame) -> None:
    """SLURM sends SIGTERM before it kills a job it requeues (`scontrol requeue`, a requeue
    after submitit's time-limit checkpoint, preemption) or cancels. submitit's own handler
    ignores it and the job runs on until SIGKILL; meanwhile the wandb service, a child
    process that received the same SIGTERM, has exited, so the job's next wandb call fails
    with a ConnectionResetError traceback, and a job finishing in that window stores that
    failure as its result although SLURM reruns it. Instead stop here, without running
    exit handlers: outputs and checkpoints are written atomically, so the requeued job
    resumes from the last complete chunk and continues the same wandb run."""
    os.write(2, b"nrtjax: SIGTERM from SLURM (requeue, preemption or scancel): stopping now; "
                b"a requeued job resumes from its checkpoints.\n")
    os._exit(128 + signum)


def _close_wandb_for_requeue() -> None:
    """Mark the job's wandb run as preempted and close it cleanly (no half-open socket), so
    the requeued job resumes it by id instead of leaving a broken second run."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return
    try:
        run.mark_preempting()
        run.finish(exit_code=0, quiet=True)
    except Exception as e:   # the job is being requeued anyway; never fail the checkpoint
        log.warning(f"could not close the wandb run before requeueing: {e}")

