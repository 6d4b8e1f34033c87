"""The one pattern every job follows: typed config -> validate -> run dir -> library calls.

A job is written as

    @dataclass
    class Config(BaseConfig):          # typed schema: unknown keys and wrong types fail
        duration: float = 10.0
        def __post_init__(self):       # ranges: raise ConfigError naming the key
            check_range("duration", self.duration, low=0.0, low_open=True)

    @job("NAME", Config)
    def main(run: Run) -> dict: ...    # returns metrics; outputs go to run.path(...)

and configured by `conf/NAME.yaml` (whose defaults list starts with `NAME_schema`).

`Run` also gives long jobs a progress bar (`run.progress`) and atomic checkpoints in
`run.dir/checkpoints/` (`save_checkpoint`/`load_checkpoint` for arrays, `save_model`/
`load_model` for Equinox modules); `resume=DIR` on the command line pins the run directory,
so rerunning the same command finds them. Model-based jobs subclass
`experiments._groups.ModelRunConfig` and add `config` to their defaults list.
"""

import dataclasses
import functools
import hashlib
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import equinox as eqx
import hydra
import jax.random as jr
import numpy as np
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments._env import reexec_with_malloc_hugepages, started_as_job_module
from nrtjax.io import atomic_path, write_json, write_npz


# conf/ beside experiments/ (an absolute path: Hydra resolves a relative one against
# the module name, which fails for modules inside a package).
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


class ConfigError(ValueError):
    """A configuration value out of its allowed range (raised before any compute)."""


def check_range(key: str, value, *, low=None, high=None, low_open=False, high_open=False,
                hint: str = ""):
    """Raise ConfigError naming `key` unless `value` lies in the interval (`hint` says why)."""
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        lb = "-inf" if low is None else f"{low}"
        hb = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lb}, {hb}{')' if high_open or high is None else ']'}"
        why = f" {hint}" if hint else ""
        raise ConfigError(f"{key}={value!r} is out of range: allowed {interval}.{why}")


def check_choice(key: str, value, choices):
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not allowed: choose one of {list(choices)}.")


@dataclasses.dataclass
class WandbConfig:
    mode: str = "offline"
    project: str = "nrtjax"
    entity: str | None = None

    def __post_init__(self):
        check_choice("wandb.mode", self.mode, ("offline", "online", "disabled"))


@dataclasses.dataclass
class BaseConfig:
    seed: int = 0
    wandb: WandbConfig = dataclasses.field(default_factory=WandbConfig)
    # The run directory to use (or reuse): rerunning a command with the same resume=DIR
    # continues a resumable job where it stopped. None: a fresh timestamped directory.
    resume: str | None = None


# Hydra's run directory honours `resume=DIR` (conf/hydra_defaults.yaml): `nrt_or` picks its
# first argument if it is a non-empty string (a job that redefines `resume` as a flag keeps
# the default directory). Registered here because every job imports this module.
OmegaConf.register_new_resolver(
    "nrt_or", lambda a, b: a if isinstance(a, str) and a else b, replace=True)

# conf/hydra/launcher/{joblib,submitit_*}.yaml keep the plugins' names so that
# `hydra/launcher=joblib` picks up our documented settings; Hydra validates such a file
# against the plugin's schema of the same name (what we want) and warns that it does.
# (There is deliberately no conf/hydra/launcher/basic.yaml: as the default launcher it
# would be loaded, and warned about, in every composition, including in-process tests.)
warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema")

# Values like `linspace(-1,0.5,256)` are grid specs parsed by the job, not Hydra functions.
_GRID_FUNCTION = re.compile(r"^(linspace|logspace|geomspace|arange)\(.*\)$")


def prepare_overrides(args: list[str], open_keys: Iterable[str] = ()) -> list[str]:
    """Make command-line overrides that Hydra's grammar would reject mean what they say.

    `KEY=linspace(a,b,n)` (also logspace, geomspace, arange) is quoted so that Hydra
    passes the text to the job instead of calling an unknown function, and `KEY.sub=v`
    for a `KEY` in `open_keys` (free-form dicts such as a sweep's `grid`) becomes
    `++KEY.sub=v`, so that no `+` is needed to add an entry.
    """
    open_keys = tuple(open_keys)
    out = []
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            out.append(arg)
            continue
        key, value = arg.split("=", 1)
        if _GRID_FUNCTION.match(value):
            value = f"'{value}'"
        bare = key.lstrip("+~")
        if bare == key and bare.split(".", 1)[0] in open_keys and "." in bare:
            key = "++" + key
        out.append(f"{key}={value}")
    return out


class Run:
    """A job's run: its typed config, output directory, PRNG key and logger."""

    def __init__(self, name: str, cfg: Any, plain: dict, directory: Path):
        self.name = name
        self.cfg = cfg
        self.dir = directory
        self.key = jr.key(cfg.seed)
        self.outputs: list[Path] = []
        self._wandb = None
        if cfg.wandb.mode != "disabled":
            os.environ.setdefault("WANDB_SILENT", "true")
            import wandb

            self._wandb = wandb.init(
                project=cfg.wandb.project, entity=cfg.wandb.entity, mode=cfg.wandb.mode,
                dir=str(directory), config=plain, name=f"{name}-{directory.name}",
                reinit="finish_previous", id=wandb_run_id(name, directory), resume="allow",
            )

    def path(self, name: str) -> Path:
        """A path inside the run directory, recorded as an output."""
        p = self.dir / name
        self.outputs.append(p)
        return p

    def log(self, metrics: dict, step: int | None = None):
        """Log scalars to wandb (a no-op with wandb.mode=disabled)."""
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in metrics.items() if _is_scalar(v)}, step=step)

    def progress(self, iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str | None = None, initial: int = 0):
        """A tqdm progress bar on stderr (shown on a terminal, silent in pipes and logs)."""
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc or self.name, initial=initial,
                    file=sys.stderr, dynamic_ncols=True, mininterval=0.5, disable=None)

    # --- checkpoints: everything under run.dir/checkpoints, written atomically -------------
    def checkpoint_path(self, name: str) -> Path:
        """`run.dir/checkpoints/NAME` (not recorded as an output)."""
        return self.dir / "checkpoints" / name

    def save_checkpoint(self, name: str, **arrays) -> Path:
        """Save numeric arrays as `checkpoints/NAME.npz`, atomically (a kill mid-write
        leaves the previous checkpoint, never a half-written one)."""
        return write_npz(self.checkpoint_path(f"{name}.npz"), **arrays)

    def load_checkpoint(self, name: str) -> dict[str, np.ndarray] | None:
        """The arrays saved by `save_checkpoint(NAME, ...)`, or None if there are none."""
        path = self.checkpoint_path(f"{name}.npz")
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def save_model(self, name: str, model) -> Path:
        """Save an Equinox module (or any PyTree of arrays) as `checkpoints/NAME.eqx`."""
        path = self.checkpoint_path(f"{name}.eqx")
        with atomic_path(path) as tmp:
            eqx.tree_serialise_leaves(tmp, model)
        return path

    def load_model(self, name: str, like):
        """Load `checkpoints/NAME.eqx` into the structure of `like`, or None if absent."""
        path = self.checkpoint_path(f"{name}.eqx")
        if not path.exists():
            return None
        return eqx.tree_deserialise_leaves(path, like)

    def finish(self, metrics: dict) -> Path:
        path = write_json(self.dir / "metrics.json", metrics)
        if self._wandb is not None:
            self._wandb.summary.update({k: v for k, v in metrics.items() if _is_scalar(v)})
            self._wandb.finish()
        return path


def wandb_run_id(name: str, directory: Path) -> str:
    """A wandb run id that is a function of the job and its run directory, so that a job
    run again in the same directory (`resume=DIR`, a SLURM requeue: the multirun member's
    directory `SWEEP_DIR/N` is fixed at submission) continues the same wandb run."""
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    return f"{name}-{digest}"


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def job(name: str, schema: type, *, open_keys: Iterable[str] = ()) -> Callable:
    """Turn `fn(run) -> metrics` into the Hydra app `nrtjax NAME`.

    `open_keys` names free-form dict fields of the schema (e.g. a sweep's `grid`) whose
    entries may be added from the command line without Hydra's `+` prefix.
    """
    ConfigStore.instance().store(name=f"{name}_schema", node=schema)
    open_keys = tuple(open_keys)

    def decorator(fn: Callable[[Run], dict]) -> Callable:
        @hydra.main(version_base=None, config_path=CONF_DIR, config_name=name)
        def _main(dcfg) -> None:
            start = time.perf_counter()
            logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
            try:
                cfg = OmegaConf.to_object(dcfg)
            except (ConfigError, OmegaConfBaseException) as e:
                print(f"nrtjax {name}: invalid configuration: {e}", file=sys.stderr)
                sys.exit(2)
            plain = OmegaConf.to_container(dcfg, resolve=True)
            directory = Path(HydraConfig.get().runtime.output_dir)
            write_json(directory / "config.json", plain)
            run = Run(name, cfg, plain, directory)
            try:
                metrics = fn(run)
            except (FileNotFoundError, ValueError, PermissionError, OSError) as e:
                if run._wandb is not None:
                    run._wandb.finish(exit_code=1)
                kind = "invalid configuration" if isinstance(e, ConfigError) else "error"
                print(f"nrtjax {name}: {kind}: {e}", file=sys.stderr)
                sys.exit(2 if isinstance(e, ConfigError) else 1)
            run.finish(metrics)
            print(f"nrtjax {name}: done in {time.perf_counter() - start:.1f} s; "
                  f"outputs in {directory}{_listing(run.outputs)}")

        @functools.wraps(fn)
        def main() -> None:
            if started_as_job_module():  # `python -m experiments.NAME`, as `nrtjax NAME` does
                reexec_with_malloc_hugepages()
            sys.argv[1:] = prepare_overrides(sys.argv[1:], open_keys)
            _main()

        main.run_fn = fn
        return main

    return decorator


def _listing(outputs: list[Path]) -> str:
    names = sorted({p.name for p in outputs if p.exists()})
    if not names:
        return ""
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f" ({shown}, metrics.json)"
