"""Print the sbatch script that `nrtjax JOB -m hydra/launcher=submitit_slurm ...` submits.

    python scripts/slurm_preview.py sweep experiment=alpha_beta_map model.n=9,17
    python scripts/slurm_preview.py sweep hydra/launcher=submitit_slurm_gpu \
        hydra.launcher.gpus_per_node=4 hydra.launcher.partition=gpu experiment=alpha_beta_map

Give the job and the overrides of the multirun (the launcher is submitit_slurm unless a
`hydra/launcher=...` is given). The job's config is composed as Hydra composes it; the
executor is built by the launcher's own `make_executor` (hydra_plugins/nrtjax_launcher) and
the script written by submitit's own `SlurmExecutor._make_submission_file_text`, with the
array size submitit gives a multirun of that many members (`--array=0-N%parallelism` for
two or more members, a plain job for one). Only the sweep directory differs from a real
submission: it holds the time at which this script ran. Needs no cluster (submitit's check
for `srun` is skipped); on a SLURM login node it is the same script.
"""

import sys
import warnings
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from submitit import SlurmExecutor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import _cli  # noqa: E402
from experiments._job import CONF_DIR, prepare_overrides  # noqa: E402
from hydra_plugins.nrtjax_launcher.launcher import make_executor  # noqa: E402


class _ScriptOnlyExecutor(SlurmExecutor):
    """submitit's SLURM executor without its check that `srun` is on PATH (nothing is
    submitted: only the script is written)."""

    @classmethod
    def affinity(cls) -> int:
        return 2


def members(overrides: list[str]) -> list[list[str]]:
    """The multirun's members, each as its list of overrides (Hydra's basic sweeper)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def sbatch_text(job: str, overrides: list[str]) -> tuple[str, int]:
    """The sbatch script submitit writes for `nrtjax JOB -m OVERRIDES` and the job count."""
    __import__(f"experiments.{job}")  # registers the job's schema
    overrides = prepare_overrides(overrides, ("grid",))
    if not any(o.lstrip("+~").startswith("hydra/launcher=") for o in overrides):
        overrides = ["hydra/launcher=submitit_slurm", *overrides]
    jobs = members(overrides)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*validated against ConfigStore schema")
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            cfg = compose(job, overrides=jobs[0], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    if not str(params.get("_target_", "")).startswith("hydra_plugins.nrtjax_launcher."):
        raise SystemExit(f"slurm_preview.py: hydra/launcher is {params.get('_target_')}, "
                         "not a SLURM launcher of this project.")
    executor = make_executor(params, executor_cls=_ScriptOnlyExecutor)
    if len(jobs) > 1:   # what SlurmExecutor._internal_process_submissions does for an array
        executor.parameters["map_count"] = len(jobs)
    return executor._make_submission_file_text(executor._submitit_command_str, "preview"), len(jobs)


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] not in _cli.jobs():
        sys.exit(f"usage: slurm_preview.py JOB [overrides...]; jobs: {', '.join(_cli.jobs())}")
    text, n = sbatch_text(args[0], args[1:])
    kind = f"one job array of {n} tasks" if n > 1 else "one job"
    print(f"# {kind}; submitted with `sbatch` from the directory nrtjax runs in\n{text}")


if __name__ == "__main__":
    main()
