"""Print the sbatch script that `hydra/launcher=submitit_slurm` would submit, without a cluster.

    .venv/bin/python scripts/slurm_preview.py sweep hydra.launcher.partition=gpu \
        hydra.launcher.gpus_per_node=4 hydra.launcher.timeout_min=120

Composes the job's config with conf/hydra/launcher/submitit_slurm.yaml and the overrides
given, maps the launcher settings the way submitit's AutoExecutor does, and renders them
with submitit's own sbatch template. To run the whole submitit pipeline on this machine,
use `hydra/launcher=submitit_local` instead (same folders, pickled jobs and logs).
"""

import sys
import warnings

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from submitit.slurm.slurm import _make_sbatch_string

from experiments import _cli
from experiments._job import CONF_DIR, prepare_overrides


def sbatch_text(job: str, overrides: list[str]) -> str:
    """The sbatch script for the first job of `nrtjax JOB -m ... hydra/launcher=submitit_slurm`."""
    __import__(f"experiments.{job}")  # registers the job's schemas
    overrides = ["hydra/launcher=submitit_slurm", *prepare_overrides(overrides, ("grid",))]
    with warnings.catch_warnings():
        # Our submitit_slurm.yaml extends the plugin's schema of the same name (on purpose).
        warnings.filterwarnings("ignore", message=r"(?s).*validated against ConfigStore schema")
        with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
            cfg = compose(job, overrides=overrides, return_hydra_config=True)
    la = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    extra = la.get("additional_parameters") or {}
    folder = f"multirun/{job}/DATE_TIME/.submitit/%j"   # hydra.sweep.dir is set at launch
    return _make_sbatch_string(
        command=f"{sys.executable} -u -m submitit.core._submit {folder}",
        folder=folder, job_name=f"nrtjax-{job}", partition=la["partition"],
        time=la["timeout_min"], nodes=la["nodes"], ntasks_per_node=la["tasks_per_node"],
        cpus_per_task=la["cpus_per_task"], gpus_per_node=la["gpus_per_node"],
        mem=f"{la['mem_gb']}GB" if la["mem_gb"] else None, qos=la["qos"],
        account=la["account"], gres=la["gres"], constraint=la["constraint"],
        exclude=la["exclude"], comment=la["comment"], cpus_per_gpu=la["cpus_per_gpu"],
        gpus_per_task=la["gpus_per_task"], mem_per_gpu=la["mem_per_gpu"],
        mem_per_cpu=la["mem_per_cpu"], signal_delay_s=la["signal_delay_s"],
        setup=la["setup"], array_parallelism=la["array_parallelism"],
        stderr_to_stdout=la["stderr_to_stdout"], additional_parameters=dict(extra),
        map_count=1,
    )


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] not in _cli.jobs():
        sys.exit(f"usage: slurm_preview.py JOB [overrides...]; jobs: {', '.join(_cli.jobs())}")
    print(sbatch_text(args[0], args[1:]))


if __name__ == "__main__":
    main()
