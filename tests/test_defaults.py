"""One default per parameter: a job's config (its schema and its YAML) starts from the
library's defaults for every model parameter it shares with the library, unless the job
sets a value on purpose (listed below with the reason, which the YAML also states)."""

import dataclasses
import importlib
import inspect
import warnings

import equinox as eqx
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import nrtjax as nrt
from experiments import _groups
from experiments._job import CONF_DIR
from nrtjax.audio.duet import DuetParams

# The duet parameters each job sets (names as in DuetParams).
DUET_KEYS = {
    "duet": ("tempo_bpm", "lambda1", "lambda2", "rho", "scale", "root", "octave", "lorenz_rate",
             "forcing_gain"),
    "visual_duet": ("tempo_bpm", "rho"),
    "eeg_duet": ("scale", "gamma"),
    "demo": ("rho",),
}
# (job, key): why the job's value differs from the library's default.
DELIBERATE = {
    ("eeg_duet", "gamma"): "conf/eeg_duet.yaml: at 0.02 the EEG's tempo changes are not heard",
}


def library_defaults(obj) -> dict:
    if dataclasses.is_dataclass(obj) and not issubclass(obj, eqx.Module):  # a Module's
        # fields carry no defaults: its __init__ has them
        return {f.name: f.default for f in dataclasses.fields(obj)
                if f.default is not dataclasses.MISSING}
    return {k: p.default for k, p in inspect.signature(obj).parameters.items()
            if p.default is not inspect.Parameter.empty}


def composed(name: str, overrides=()) -> dict:
    importlib.import_module(f"experiments.{name}")  # stores the job's schemas
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"\s*'hydra/launcher/", UserWarning)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None, job_name=name):
            cfg = compose(config_name=name, overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def schema_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


def _compare(job: str, config: dict, library: dict, keys=None) -> list[str]:
    keys = sorted(config.keys() & library.keys()) if keys is None else keys
    return [f"{job}.{k} = {config[k]!r}, the library's default is {library[k]!r}"
            for k in keys
            if config[k] != library[k] and (job, k) not in DELIBERATE]


@pytest.mark.parametrize("group, schema, model", [
    ("ashle", _groups.ASHLEConfig, nrt.ASHLE), ("grfnn", _groups.GrFNNConfig, nrt.GrFNN),
    ("hopf", _groups.HopfConfig, nrt.Hopf), ("lorenz", _groups.LorenzConfig, nrt.Lorenz),
])
def test_model_groups_start_from_the_models_defaults(group, schema, model):
    lib = library_defaults(model)
    assert lib, f"{model.__name__} has no defaults to compare"
    yaml = composed("simulate", [f"model={group}"])["model"]
    bad = _compare(f"model/{group}", yaml, lib) + _compare(f"{schema.__name__}",
                                                           schema_defaults(schema), lib)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("job", sorted(DUET_KEYS))
def test_duet_jobs_start_from_the_duet_defaults(job):
    lib, keys = library_defaults(DuetParams), DUET_KEYS[job]
    config = importlib.import_module(f"experiments.{job}").Config
    bad = (_compare(job, composed(job), lib, keys)
           + _compare(job, schema_defaults(config), lib, keys))
    assert not bad, "\n".join(bad)


def test_the_surrogate_job_starts_from_the_surrogate_defaults():
    from experiments._surrogate import ModelConfig

    lib = {**library_defaults(nrt.surrogate.TCN), **library_defaults(nrt.surrogate.Surrogate)}
    lib["tempo_clip"] = list(lib["tempo_clip"])
    del lib["dtype"]  # the library's None is JAX's default float; the job names float32
    yaml = composed("train_surrogate")["model"]
    assert set(schema_defaults(ModelConfig)) - {"dtype"} <= set(lib)  # every key is the library's
    bad = (_compare("train_surrogate.model", yaml, lib)
           + _compare("ModelConfig", schema_defaults(ModelConfig), lib)
           + _compare("ModelConfig", {"tempo_clip": ModelConfig().tempo_clip}, lib))
    assert not bad, "\n".join(bad)


def test_the_deliberate_differences_still_differ():
    lib = library_defaults(DuetParams)
    for (job, key), why in DELIBERATE.items():
        assert composed(job)[key] != lib[key], f"{job}.{key} agrees now; drop it ({why})"
