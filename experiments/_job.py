"""The one pattern every job follows: typed config -> validate -> stage -> run -> commit.

A job is written as

    @dataclass
    class Config(BaseConfig):          # typed schema: unknown keys and wrong types fail
        audio: str | None = input_path(suffixes=(".wav", ".flac"))   # checked before compute
        duration: float = 10.0
        def __post_init__(self):       # ranges: raise ConfigError naming the key
            check_range("duration", self.duration, low=0.0, low_open=True)

    @job("NAME", Config)
    def main(run: Run) -> dict: ...    # returns metrics; outputs go to run.path(...)

and configured by `conf/NAME.yaml` (whose defaults list starts with `NAME_schema`).

The contract `job()` enforces for every job (docs/jobs.md):

- the whole config (types, ranges, cross-key constraints, unknown keys with or without `+`,
  input paths, the output folder) is checked before any compute or write: for a single
  run, for `--cfg job`, and for every member of a multirun up front;
- outputs are written into a staging folder `.NAME.partial` beside the target folder and
  moved there only when the job succeeds (config.json, metrics.json and results
  together); a failed run leaves no folder and touches no existing one, except that the
  checkpoints of a resumable job stay in the staging folder for `resume=`;
- errors are one line `nrtjax NAME: error: ...` on stderr (exit 2 for a bad config, 1 for
  bad data, 130 for Ctrl-C), with a traceback only under `HYDRA_FULL_ERROR=1` or `--debug`.

`Run` also gives long jobs progress bars (`run.progress`, `run.phase`) and atomic
checkpoints in `run.dir/checkpoints/` (`save_checkpoint`/`load_checkpoint` for arrays,
`save_model`/`load_model` for Equinox modules); `resume=DIR` on the command line pins the
run directory, so rerunning the same command finds them. Model-based jobs subclass
`experiments._groups.ModelRunConfig` and add `config` to their defaults list.
"""

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import itertools
import logging
import os
import re
import shlex
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments._env import reexec_with_malloc_hugepages, started_as_job_module


# conf/ beside experiments/ (an absolute path: Hydra resolves a relative one against
# the module name, which fails for modules inside a package).
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")

EXIT_CONFIG, EXIT_DATA, EXIT_INTERRUPTED = 2, 1, 130
PROGRESS_ENV = "NRTJAX_PROGRESS"   # 1: show progress bars even when stderr is not a terminal
_STAGE = re.compile(r"^\.(.+)\.partial$")


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


# --- input paths -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What an input path must be: a `kind` ("file" or "dir"), one of `suffixes` (any if
    empty), and a `companion` suffix for a file that must sit beside it (a checkpoint's
    `.json`)."""

    kind: str = "file"
    suffixes: tuple[str, ...] = ()
    companion: str | None = None
    hint: str = ""


def input_path(default: str | None = None, *, kind: str = "file", suffixes: Iterable[str] = (),
               companion: str | None = None, hint: str = ""):
    """A config field naming an input file (or folder): the job wrapper checks that it
    exists, is of the right kind and suffix and is readable before any compute."""
    spec = InputSpec(kind, tuple(s.lower() for s in suffixes), companion, hint)
    return dataclasses.field(default=default, metadata={"nrtjax_input": spec})


def _iter_inputs(obj, prefix: str = ""):
    if not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        spec = f.metadata.get("nrtjax_input")
        if spec is not None:
            yield f"{prefix}{f.name}", value, spec
        elif dataclasses.is_dataclass(value):
            yield from _iter_inputs(value, f"{prefix}{f.name}.")


def check_inputs(cfg) -> None:
    """Every declared input path exists, has the right kind and suffix, and is readable."""
    for key, value, spec in _iter_inputs(cfg):
        if value is None or value == "":
            continue
        path = Path(str(value)).expanduser()
        what = "folder" if spec.kind == "dir" else "file"
        kinds = f" ({', '.join(spec.suffixes)})" if spec.suffixes else ""
        hint = f" {spec.hint}" if spec.hint else ""
        if not path.exists():
            raise ConfigError(f"{key}={value}: {what} not found. Check the path.{hint}")
        if spec.kind == "file" and path.is_dir():
            raise ConfigError(f"{key}={value} is a folder; give a file{kinds}.{hint}")
        if spec.kind == "dir" and not path.is_dir():
            raise ConfigError(f"{key}={value} is a file; give a folder.{hint}")
        name = path.name.lower()
        if spec.suffixes and not any(name.endswith(s) for s in spec.suffixes):
            raise ConfigError(f"{key}={value} is not a supported {what} type: expected one "
                              f"of {', '.join(spec.suffixes)}.{hint}")
        if spec.companion:
            comp = path.with_suffix(spec.companion)
            if not comp.is_file():
                raise ConfigError(f"{key}={value} exists, but {comp.name} (its companion "
                                  f"file) is missing beside it; restore it.{hint}")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{key}={value} is not readable (permissions).")


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


# Hydra's run directory honours `out=DIR` and `resume=DIR` (conf/hydra_defaults.yaml):
# `nrt_or` picks its first argument if it is a non-empty string; `nrt_stage` turns the
# target folder into its staging folder `.NAME.partial` beside it (the job moves it to
# the target when it succeeds). Registered here because every job imports this module.
@dataclasses.dataclass
class OptimConfig:
    """The `optim.*` keys every trainer shares: `nrt.make_optimizer`'s options, the number
    of steps, the batch of random crops and how often the shared trainer checkpoints.
    Trainers subclass it to change defaults or add their own keys."""

    steps: int = 1000
    batch_size: int = 8
    crop: int = 1024
    lr: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    clip_norm: float = 1.0
    checkpoint_every: int = 100

    def __post_init__(self):
        check_range("optim.steps", self.steps, low=1)
        check_range("optim.batch_size", self.batch_size, low=1)
        check_range("optim.crop", self.crop, low=16)
        check_range("optim.lr", self.lr, low=0.0, low_open=True, high=1.0)
        check_range("optim.warmup_steps", self.warmup_steps, low=0)
        check_range("optim.weight_decay", self.weight_decay, low=0.0)
        check_range("optim.clip_norm", self.clip_norm, low=0.0, low_open=True)
        check_range("optim.checkpoint_every", self.checkpoint_every, low=1)

    def optimizer(self, **options):
        """`nrt.make_optimizer` with these settings (`options`: e.g. `decay_mask`)."""
        from nrtjax import make_optimizer

        return make_optimizer(lr=self.lr, total_steps=self.steps,
                              warmup_steps=self.warmup_steps, weight_decay=self.weight_decay,
                              clip_norm=self.clip_norm, **options)


def staging_dir(target) -> str:
    path = Path(str(target)).expanduser()
    if path.name in ("", ".", ".."):
        path = Path(os.path.abspath(path))
    return str(path.parent / f".{path.name}.partial")


def target_of(stage: Path) -> Path | None:
    """The target folder of a staging folder (None if `stage` is not one)."""
    parts = list(stage.parts)
    for i in range(len(parts) - 1, -1, -1):
        m = _STAGE.match(parts[i])
        if m:
            parts[i] = m.group(1)
            return Path(*parts)
    return None


OmegaConf.register_new_resolver(
    "nrt_or", lambda a, b: a if isinstance(a, str) and a else b, replace=True)
OmegaConf.register_new_resolver("nrt_stage", staging_dir, replace=True)

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
    """A job's run: its typed config, staging directory `dir` (moved to `final_dir` when the
    job succeeds), PRNG key and logger."""

    def __init__(self, name: str, cfg: Any, plain: dict, directory: Path,
                 final_dir: Path | None = None):
        import jax.random as jr

        self.name = name
        self.cfg = cfg
        self.dir = Path(directory)
        self.final_dir = Path(final_dir) if final_dir is not None else self.dir
        self.key = jr.key(cfg.seed)
        self.outputs: list[Path] = []
        self._wandb = None
        if cfg.wandb.mode != "disabled":
            os.environ.setdefault("WANDB_SILENT", "true")
            import wandb

            self._wandb = wandb.init(
                project=cfg.wandb.project, entity=cfg.wandb.entity, mode=cfg.wandb.mode,
                dir=str(directory), config=plain, name=f"{name}-{self.final_dir.name}",
                reinit="finish_previous", id=wandb_run_id(name, self.final_dir),
                resume="allow",
            )

    def path(self, name: str) -> Path:
        """A path inside the run directory, recorded as an output."""
        p = self.dir / name
        self.outputs.append(p)
        return p

    def final_path(self, path) -> Path:
        """Where `path` (inside the staging `run.dir`) will be once the job succeeds."""
        path = Path(path)
        try:
            return self.final_dir / path.relative_to(self.dir)
        except ValueError:
            return path

    def log(self, metrics: dict, step: int | None = None):
        """Log scalars to wandb (a no-op with wandb.mode=disabled)."""
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in metrics.items() if _is_scalar(v)}, step=step)

    def progress(self, iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str | None = None, initial: int = 0, unit: str = "it"):
        """A tqdm progress bar on stderr (shown on a terminal, or everywhere with
        NRTJAX_PROGRESS=1; silent in pipes and logs)."""
        return progress_bar(iterable, total=total, desc=desc or self.name, initial=initial,
                            unit=unit)

    @contextlib.contextmanager
    def phase(self, desc: str):
        """A progress line for a phase without steps of its own (elapsed time, updated
        twice a second), e.g. `with run.phase("fitting 4 restarts"): ...`."""
        bar = progress_bar(total=None, desc=f"{self.name}: {desc}", unit="s")
        stop = threading.Event()

        def tick():
            while not stop.wait(0.5):
                bar.refresh()

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield bar
        finally:
            stop.set()
            thread.join()
            bar.close()

    # --- checkpoints: everything under run.dir/checkpoints, written atomically -------------
    def checkpoint_path(self, name: str) -> Path:
        """`run.dir/checkpoints/NAME` (not recorded as an output)."""
        return self.dir / "checkpoints" / name

    def save_checkpoint(self, name: str, **arrays) -> Path:
        """Save numeric arrays as `checkpoints/NAME.npz`, atomically (a kill mid-write
        leaves the previous checkpoint, never a half-written one)."""
        from nrtjax.io import write_npz

        return write_npz(self.checkpoint_path(f"{name}.npz"), **arrays)

    def load_checkpoint(self, name: str):
        """The arrays saved by `save_checkpoint(NAME, ...)`, or None if there are none."""
        import numpy as np

        path = self.checkpoint_path(f"{name}.npz")
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}

    def save_model(self, name: str, model) -> Path:
        """Save an Equinox module (or any PyTree of arrays) as `checkpoints/NAME.eqx`."""
        import equinox as eqx

        from nrtjax.io import atomic_path

        path = self.checkpoint_path(f"{name}.eqx")
        with atomic_path(path) as tmp:
            eqx.tree_serialise_leaves(tmp, model)
        return path

    def load_model(self, name: str, like):
        """Load `checkpoints/NAME.eqx` into the structure of `like`, or None if absent."""
        import equinox as eqx

        path = self.checkpoint_path(f"{name}.eqx")
        if not path.exists():
            return None
        return eqx.tree_deserialise_leaves(path, like)

    def finish(self, metrics: dict) -> Path:
        from nrtjax.io import write_json

        path = write_json(self.dir / "metrics.json", metrics)
        if self._wandb is not None:
            self._wandb.summary.update({k: v for k, v in metrics.items() if _is_scalar(v)})
            self._wandb.finish()
        return path


def progress_bar(iterable=None, *, total=None, desc=None, initial=0, unit="it", leave=False):
    """tqdm on stderr: on a terminal, or everywhere with NRTJAX_PROGRESS=1."""
    from tqdm.auto import tqdm

    force = os.environ.get(PROGRESS_ENV, "") not in ("", "0")
    return tqdm(iterable, total=total, desc=desc, initial=initial, unit=unit, leave=leave,
                file=sys.stderr, dynamic_ncols=True, mininterval=0.5,
                disable=False if force else None)


def wandb_run_id(name: str, directory: Path) -> str:
    """A wandb run id that is a function of the job and its run directory, so that a job
    run again in the same directory (`resume=DIR`, a SLURM requeue: the multirun member's
    directory `SWEEP_DIR/N` is fixed at submission) continues the same wandb run."""
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]
    return f"{name}-{digest}"


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --- validation ----------------------------------------------------------------------------
def unknown_keys(node, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Keys of a composed config that its schema does not define (e.g. from `+key=v`):
    `(dotted key, the valid keys at that level)`."""
    found = []
    if not isinstance(node, DictConfig):
        return found
    kind = OmegaConf.get_type(node)
    if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
        return found
    fields = [f.name for f in dataclasses.fields(kind)]
    for key in node.keys():
        if key not in fields:
            found.append((f"{prefix}{key}", fields))
        else:
            found += unknown_keys(node._get_node(key), f"{prefix}{key}.")
    return found


def validate(dcfg, schema: type | None = None):
    """The typed config of a composed `dcfg`, fully checked; raises ConfigError."""
    bad = unknown_keys(dcfg)
    if bad:
        key, valid = bad[0]
        leaf = key.rsplit(".", 1)[-1]
        near = difflib.get_close_matches(leaf, valid, n=1)
        hint = f" (did you mean {key[: -len(leaf)]}{near[0]}?)" if near else ""
        raise ConfigError(f"unknown key {key}{hint}; valid keys here: {', '.join(valid)}.")
    try:
        cfg = OmegaConf.to_object(dcfg)
    except ConfigError:
        raise
    except (OmegaConfBaseException, ValueError, TypeError) as e:
        # A schema's __post_init__ may raise a plain ValueError: still a bad config.
        raise ConfigError(one_line(e)) from e
    check_inputs(cfg)
    check_output(cfg)
    return cfg


def check_output(cfg) -> None:
    """`out=` and `resume=` name a folder (not a file) and agree."""
    out = getattr(cfg, "out", None)
    resume = getattr(cfg, "resume", None)
    for key, value in (("out", out), ("resume", resume)):
        if not (isinstance(value, str) and value):
            continue
        path = Path(value).expanduser()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{key}={value} is a file; give a folder for the outputs.")
        anc = path if path.exists() else next((a for a in path.absolute().parents
                                                if a.exists()), None)
        if anc is not None and not anc.is_dir():
            raise ConfigError(f"{key}={value} is not writable ({anc} is a file); choose a "
                              f"writable {key}= folder.")
        if anc is not None and not os.access(anc, os.W_OK | os.X_OK):
            raise ConfigError(f"{key}={value} is not writable (no permission to write in "
                              f"{anc}); choose a writable {key}= folder.")
    if isinstance(out, str) and out and isinstance(resume, str) and resume \
            and Path(out).expanduser().resolve() != Path(resume).expanduser().resolve():
        raise ConfigError(f"out={out} and resume={resume} name different folders; "
                          "give one of them (both name the run folder).")


_NOISE = ("full_key:", "reference_type", "object_type", "To append to your config",
          "Set the environment variable HYDRA_FULL_ERROR", "    ")


def one_line(e: BaseException) -> str:
    """An exception's message as one line, without OmegaConf's and Hydra's key dumps
    (with the first line of its cause when Hydra wraps one: "Error merging override")."""
    text = str(e).strip() or type(e).__name__
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith(_NOISE)]
    cause = e.__cause__
    if cause is not None and type(e).__module__.startswith(("hydra", "omegaconf")):
        first = [ln.strip() for ln in str(cause).splitlines()
                 if ln.strip() and not ln.startswith(_NOISE)][:1]
        lines += [ln for ln in first if ln not in lines]
    return "; ".join(lines) if lines else type(e).__name__


# --- the command line ------------------------------------------------------------------------
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name",
                "-cn", "--config-dir", "-cd", "--experimental-rerun"}


def _split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(flags with their values, overrides) of a job's command line."""
    flags, overrides, it = [], [], iter(range(len(argv)))
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and "=" not in a:
            flags.append(a)
            if a in _VALUE_FLAGS and i + 1 < len(argv):
                flags.append(argv[i + 1])
                i += 1
        elif a.startswith("--") and a.split("=", 1)[0] in _VALUE_FLAGS:
            flags.append(a)
        else:
            overrides.append(a)
        i += 1
    del it
    return flags, overrides


def _expand_multirun(overrides: list[str]) -> list[list[str]]:
    """Every member of a multirun: the cartesian product of its sweep overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    axes = []
    for o in parsed:
        key = o.get_key_element()
        if o.is_sweep_override():
            axes.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            axes.append([o.input_line])
    return [list(c) for c in itertools.product(*axes)]


def compose(name: str, overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None, job_name=name):
        return hydra_compose(name, overrides=overrides)


def _compose_error(name: str, overrides: list[str], e: Exception) -> str:
    msg = str(e)
    m = re.search(r"Could not override '([^']+)'", msg) or re.search(
        r"Could not append to config\. An item is already at '([^']+)'", msg)
    if m and "Could not override" in msg and "To append" in msg:
        key = m.group(1)
        parent, _, leaf = key.rpartition(".")
        valid: list[str] = []
        try:
            base = compose(name, [o for o in overrides if not o.lstrip("+~").startswith(key + "=")])
            node = OmegaConf.select(base, parent) if parent else base
            valid = list(node.keys()) if isinstance(node, DictConfig) else []
        except Exception:
            pass
        near = difflib.get_close_matches(leaf, valid, n=1)
        hint = f" (did you mean {parent + '.' if parent else ''}{near[0]}?)" if near else ""
        listing = f"; valid keys here: {', '.join(valid)}" if valid else ""
        return f"unknown key {key}{hint}{listing}."
    return one_line(e)


def _fail(name: str, message: str, code: int, exc: BaseException | None = None):
    if exc is not None and _debug():
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"nrtjax {name}: error: {message}", file=sys.stderr)
    sys.exit(code)


def _debug() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def preflight(name: str, argv: list[str]) -> None:
    """Compose and validate the config of every run this command line would start (all
    members of a multirun) before anything runs; exit 2 with one line on the first error."""
    flags, overrides = _split_argv(argv)
    if "--hydra-help" in flags or "--info" in flags or "--shell-completion" in flags:
        return
    multirun = "-m" in flags or "--multirun" in flags
    try:
        members = _expand_multirun(overrides) if multirun else [overrides]
    except Exception as e:  # a syntax error in an override
        _fail(name, one_line(e), EXIT_CONFIG, e)
    if not multirun and any(_is_sweep(o) for o in overrides):
        _fail(name, "a comma-separated sweep needs -m (multirun): nrtjax "
                    f"{name} -m {' '.join(overrides)}", EXIT_CONFIG)
    for i, member in enumerate(members):
        where = f" (multirun member {i}: {' '.join(member)})" if multirun else ""
        try:
            dcfg = compose(name, member)
        except Exception as e:
            _fail(name, _compose_error(name, member, e) + where, EXIT_CONFIG, e)
        try:
            validate(dcfg)
        except (ConfigError, OmegaConfBaseException) as e:
            _fail(name, one_line(e) + where, EXIT_CONFIG, e)


def _is_sweep(override: str) -> bool:
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        return OverridesParser.create().parse_overrides([override])[0].is_sweep_override()
    except Exception:
        return False


def print_help(name: str, doc: str, argv: list[str]) -> None:
    """`nrtjax NAME --help`: what the job does, its config with defaults, real choices."""
    from omegaconf import OmegaConf as OC

    _, overrides = _split_argv(argv)
    lines = [f"nrtjax {name}: {doc.strip().splitlines()[0] if doc.strip() else ''}".rstrip(),
             "", f"usage: nrtjax {name} [key=value ...]     one run",
             f"       nrtjax {name} -m key=a,b [...]      a multirun (one run per combination)",
             f"       nrtjax {name} --cfg job [key=value ...]  print the config, run nothing",
             "       add --debug (or HYDRA_FULL_ERROR=1) for a traceback on errors"]
    rest = "\n".join(doc.strip().splitlines()[1:]).strip()
    if rest:
        lines += ["", rest]
    groups = _group_choices(name)
    if groups:
        lines += ["", "config groups (choose with GROUP=OPTION):"]
        lines += [f"  {g}: {', '.join(opts)}" for g, opts in groups.items()]
    try:
        cfg = compose(name, overrides)
        lines += ["", "config (defaults; change any with key=value):", "",
                  OC.to_yaml(cfg).rstrip()]
    except Exception as e:
        lines += ["", f"(config not shown: {one_line(e)})"]
    print("\n".join(lines))


def _group_choices(name: str) -> dict[str, list[str]]:
    """Config groups the job's defaults list uses, and their options (conf/GROUP/*.yaml)."""
    conf = Path(CONF_DIR)
    text = (conf / f"{name}.yaml").read_text() if (conf / f"{name}.yaml").exists() else ""
    used = set(re.findall(r"^\s*-\s*(?:override\s+)?([A-Za-z_]+)\s*:", text, re.M))
    if re.search(r"^\s*-\s*config\s*$", text, re.M):
        used |= set(re.findall(r"^\s*-\s*([A-Za-z_]+)\s*:",
                               (conf / "config.yaml").read_text(), re.M))
    out = {}
    for group in sorted(used):
        folder = conf / group
        if folder.is_dir():
            opts = sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.endswith("_schema"))
            if opts:
                out[group] = opts
    return out


# --- staging and committing ------------------------------------------------------------------
def _hardlink_tree(src: Path, dst: Path) -> None:
    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link)


def commit(stage: Path, target: Path) -> None:
    """Move the staged outputs into `target`: a rename when it does not exist yet, else
    entry by entry (each replaced whole; other files in `target` are left alone)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage, target)
        return
    for entry in sorted(stage.iterdir()):
        dest = target / entry.name
        if dest.is_dir() and not dest.is_symlink():
            old = target / f".{entry.name}.old-{os.getpid()}"
            os.rename(dest, old)
            os.rename(entry, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, dest)
    shutil.rmtree(stage, ignore_errors=True)


def _salvage(stage: Path, target: Path) -> bool:
    """After a failure: keep only `checkpoints/` of a resumable job (True), or remove the
    staging folder entirely, with the empty folders above it that Hydra made inside the
    working directory, e.g. outputs/NAME/ (False)."""
    ckpt = stage / "checkpoints"
    old = target / "checkpoints"

    def new(p: Path) -> bool:  # not just a link to the target's own checkpoint
        q = old / p.relative_to(ckpt)
        return not (q.exists() and os.path.samefile(p, q))

    keep = ckpt.is_dir() and any(new(p) for p in ckpt.rglob("*") if p.is_file())
    if not keep:
        shutil.rmtree(stage, ignore_errors=True)
        cwd = Path.cwd().resolve()
        parent = stage.parent.resolve()
        while parent != cwd and cwd in parent.parents:
            try:
                parent.rmdir()  # only if empty
            except OSError:
                break
            parent = parent.parent
        return False
    for entry in stage.iterdir():
        if entry.name != "checkpoints":
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    return True


def _listing(target: Path) -> str:
    """Every output in `target`: files, and sub-folders with their file counts."""
    names = []
    for p in sorted(target.iterdir()):
        if p.name.startswith(".") or p.name in ("wandb", "checkpoints"):
            continue
        if p.is_dir():
            names.append(f"{p.name}/ ({sum(1 for q in p.rglob('*') if q.is_file())} files)")
        else:
            names.append(p.name)
    return ", ".join(names)


def _resume_command(name: str, raw: list[str], resume: Path) -> str:
    args = [a for a in raw if not re.match(r"^\+*resume=", a) and not re.match(r"^\+*out=", a)]
    return shlex.join(["nrtjax", name, *args, f"resume={resume}"])


# --- the job decorator ------------------------------------------------------------------------
def job(name: str, schema: type, *, open_keys: Iterable[str] = ()) -> Callable:
    """Turn `fn(run) -> metrics` into the Hydra app `nrtjax NAME`, with the contract above.

    `open_keys` names free-form dict fields of the schema (e.g. a sweep's `grid`) whose
    entries may be added from the command line without Hydra's `+` prefix.
    """
    import hydra

    ConfigStore.instance().store(name=f"{name}_schema", node=schema)
    open_keys = tuple(open_keys)
    state: dict = {"raw": []}

    def decorator(fn: Callable[[Run], dict]) -> Callable:
        @hydra.main(version_base=None, config_path=CONF_DIR, config_name=name)
        def _main(dcfg) -> None:
            from hydra.core.hydra_config import HydraConfig
            from hydra.types import RunMode

            start = time.perf_counter()
            logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
            try:
                cfg = validate(dcfg, schema)
            except ConfigError as e:
                _fail(name, str(e), EXIT_CONFIG, e)
            hc = HydraConfig.get()
            multirun = hc.mode == RunMode.MULTIRUN
            stage = Path(hc.runtime.output_dir)
            target = target_of(stage)
            out = getattr(cfg, "out", None)
            if not multirun and isinstance(out, str) and out and (
                    target is None or target.absolute() != Path(out).expanduser().absolute()):
                # hydra.run.dir set by hand next to out=: out= is the run folder
                target = Path(out).expanduser()
            if target is None:  # hydra.run.dir set by hand: stage beside it
                target = stage
            if Path(staging_dir(target)) != stage:
                hydra_dir, stage = stage, Path(staging_dir(target))
                stage.mkdir(parents=True, exist_ok=True)
                if (hydra_dir / ".hydra").is_dir():  # what Hydra just wrote goes with the run
                    shutil.rmtree(stage / ".hydra", ignore_errors=True)
                    os.replace(hydra_dir / ".hydra", stage / ".hydra")
                with contextlib.suppress(OSError):
                    hydra_dir.rmdir()  # only if empty: Hydra made it for us
            if (target / "checkpoints").is_dir() and not (stage / "checkpoints").exists():
                _hardlink_tree(target / "checkpoints", stage / "checkpoints")
            plain = OmegaConf.to_container(dcfg, resolve=True)
            from nrtjax.io import write_json

            write_json(stage / "config.json", plain)
            run = None
            try:
                run = Run(name, cfg, plain, stage, target)
                with warnings.catch_warnings():
                    warnings.showwarning = _show_warning(name)
                    # nrtjax integrates complex states on purpose; Diffrax's notice about
                    # complex dtypes (adaptive solvers) says nothing about this run.
                    warnings.filterwarnings("ignore", message="Complex dtype support in Diffrax")
                    metrics = fn(run)
                run.finish(metrics)
                commit(stage, target)
            except BaseException as e:  # noqa: BLE001 - every failure ends the same way
                _close_progress_bars()
                if run is not None and run._wandb is not None:
                    with contextlib.suppress(Exception):
                        run._wandb.finish(exit_code=1)
                kept = _salvage(stage, target)
                if multirun and target_of(stage.parent) is not None and stage.parent.is_dir() \
                        and not any(p.name.isdigit() for p in stage.parent.iterdir()):
                    shutil.rmtree(stage.parent, ignore_errors=True)
                resume_at = target.parent if multirun else target
                how = (f"its checkpoints are kept in {stage / 'checkpoints'}; resume with: "
                       f"{_resume_command(name, state['raw'], resume_at)}" if kept else
                       "nothing was written")
                if isinstance(e, KeyboardInterrupt):
                    print(f"nrtjax {name}: interrupted; {how}.", file=sys.stderr)
                    sys.exit(EXIT_INTERRUPTED)
                if isinstance(e, SystemExit):
                    raise
                code = EXIT_CONFIG if isinstance(e, ConfigError) else EXIT_DATA
                what = one_line(e)
                if not isinstance(e, (ValueError, OSError, ConfigError)):
                    what = f"{type(e).__name__}: {what} (rerun with --debug for the traceback)"
                _fail(name, f"{what} ({how}).", code, e)
            print(f"nrtjax {name}: done in {time.perf_counter() - start:.1f} s; outputs in "
                  f"{target}: {_listing(target)}")

        @functools.wraps(fn)
        def main() -> None:
            if started_as_job_module():  # `python -m experiments.NAME`, as `nrtjax NAME` does
                reexec_with_malloc_hugepages()
            run_cli(name, _main, sys.modules[fn.__module__].__doc__ or "", open_keys, state)

        main.run_fn = fn
        main.job_name = name
        main.open_keys = open_keys
        return main

    return decorator


def _close_progress_bars() -> None:
    """Close the bars an exception left open, so that the last line is the message."""
    tq = sys.modules.get("tqdm")
    if tq is not None:
        for bar in list(getattr(tq.tqdm, "_instances", ())):
            with contextlib.suppress(Exception):
                bar.close()


def _show_warning(name: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"nrtjax {name}: warning: {message}", file=sys.stderr)
    return show


_CHECKED: dict = {"argv": None}


def check_command_line(name: str, doc: str, open_keys: tuple, argv: list[str]) -> list[str]:
    """Everything that needs no job code to run: `--debug`, `--help`, `--cfg job`, and the
    config check of every run (preflight). Returns the overrides for Hydra; exits on help,
    `--cfg job` and a bad config. experiments/_cli.py calls it with the job module imported
    without its heavy dependencies (experiments/_lazy.py), the job itself again after."""
    argv = list(argv)
    if "--debug" in argv:
        argv.remove("--debug")
        os.environ["HYDRA_FULL_ERROR"] = "1"
    argv = prepare_overrides(argv, open_keys)
    if "--help" in argv or "-h" in argv:
        print_help(name, doc, [a for a in argv if a not in ("--help", "-h")])
        sys.exit(0)
    preflight(name, argv)
    flags, overrides = _split_argv(argv)
    if flags in (["--cfg", "job"], ["-c", "job"]):
        from omegaconf import OmegaConf as OC

        print(OC.to_yaml(compose(name, overrides)), end="")
        sys.exit(0)
    _CHECKED["argv"] = argv
    return argv


def run_cli(name: str, hydra_main: Callable, doc: str, open_keys: tuple, state: dict) -> None:
    """Parse the job's command line, check everything, then hand over to Hydra."""
    raw = list(sys.argv[1:])
    state["raw"] = [a for a in raw if a != "--debug"]
    try:
        argv = _CHECKED["argv"]
        if argv is None:
            argv = check_command_line(name, doc, open_keys, raw)
        elif "--debug" in raw:
            os.environ["HYDRA_FULL_ERROR"] = "1"
        _CHECKED["argv"] = None
        sys.argv[1:] = argv
        hydra_main()
    except KeyboardInterrupt:
        print(f"nrtjax {name}: interrupted; nothing was written for the run in progress.",
              file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


def finish_multirun(root: Path) -> None:
    """After a multirun: move multirun.yaml (and launcher folders such as .submitit) from
    the staging root into the sweep folder, and drop the staging root when no member's
    checkpoints are left in it."""
    root = Path(root)
    target = target_of(root)
    if target is None or not root.is_dir():
        return
    members = [p for p in root.iterdir() if p.name.isdigit()]
    if target.exists():
        for p in root.iterdir():
            if p.name.isdigit():
                continue
            dest = target / p.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest, ignore_errors=True)
            os.replace(p, dest)
    if not members:
        shutil.rmtree(root, ignore_errors=True)


from hydra.experimental.callback import Callback  # noqa: E402


class StageCallback(Callback):
    """Hydra callback (conf/hydra_defaults.yaml): finishes a multirun's staging root."""

    def __init__(self, **kwargs):
        pass

    def on_multirun_end(self, config, **kwargs) -> None:
        finish_multirun(Path(str(config.hydra.sweep.dir)))
