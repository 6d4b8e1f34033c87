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
"""

import dataclasses
import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import jax.random as jr
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nrtjax.io import write_json


# conf/ beside experiments/ (an absolute path: Hydra resolves a relative one against
# the module name, which fails for modules inside a package).
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


class ConfigError(ValueError):
    """A configuration value out of its allowed range (raised before any compute)."""


def check_range(key: str, value, *, low=None, high=None, low_open=False, high_open=False):
    """Raise ConfigError naming `key` unless `value` lies in the interval."""
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if not (lo_ok and hi_ok):
        lb = "-inf" if low is None else f"{low}"
        hb = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lb}, {hb}{')' if high_open or high is None else ']'}"
        raise ConfigError(f"{key}={value!r} is out of range: allowed {interval}.")


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
                reinit="finish_previous",
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

    def finish(self, metrics: dict) -> Path:
        path = write_json(self.dir / "metrics.json", metrics)
        if self._wandb is not None:
            self._wandb.summary.update({k: v for k, v in metrics.items() if _is_scalar(v)})
            self._wandb.finish()
        return path


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def job(name: str, schema: type) -> Callable:
    """Turn `fn(run) -> metrics` into the Hydra app `nrtjax NAME`."""
    ConfigStore.instance().store(name=f"{name}_schema", node=schema)

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
                print(f"nrtjax {name}: error: {e}", file=sys.stderr)
                sys.exit(1)
            run.finish(metrics)
            print(f"nrtjax {name}: done in {time.perf_counter() - start:.1f} s; outputs in {directory}")

        @functools.wraps(fn)
        def main() -> None:
            _main()

        main.run_fn = fn
        return main

    return decorator
