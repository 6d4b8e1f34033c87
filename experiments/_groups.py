"""Typed schemas of the config groups `model/`, `solver/` and `stimulus/`.

Each group option in `conf/GROUP/NAME.yaml` starts from the schema stored here as
`GROUP/NAME_schema`, so an unknown key or a wrong type fails when Hydra composes the
config and a value out of range fails in `__post_init__`, naming the key. Each schema
builds its nrtjax object from plain values; `build(**params)` takes the swept parameters
(possibly traced under `vmap`) as keyword overrides.
"""

import dataclasses
import math
from typing import TYPE_CHECKING, Any, ClassVar

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from experiments._job import BaseConfig, ConfigError, check_choice, check_range

if TYPE_CHECKING:  # for the annotations only
    import nrtjax as nrt

# JAX, Diffrax and nrtjax are imported where a model is built, not here: the schemas are
# checked before any of them loads (a config error or --help in a fraction of a second).


def _sweepable(cfg, params: dict) -> dict:
    """The config's sweepable values, with `params` (possibly traced) taking precedence."""
    unknown = set(params) - set(cfg.SWEEPABLE)
    if unknown:
        raise ConfigError(f"cannot sweep {sorted(unknown)}; sweepable: {list(cfg.SWEEPABLE)}")
    return {k: params.get(k, getattr(cfg, k)) for k in cfg.SWEEPABLE}


# --- models -------------------------------------------------------------------------------
@dataclasses.dataclass
class GrFNNConfig:
    """One canonical GrFNN layer on `n` frequencies from `fmin` to `fmax` Hz."""

    SWEEPABLE: ClassVar = ("alpha", "beta1", "beta2", "delta1", "delta2", "eps", "weight")
    HEATMAP: ClassVar = "peak_amplitude"
    SCALARS: ClassVar = ("peak_amplitude", "peak_frequency")
    fmin: float = 0.5
    fmax: float = 8.0
    n: int = 145
    spacing: str = "log"
    alpha: float = 0.0
    beta1: float = -1.0
    beta2: float = -1.0
    delta1: float = 0.0
    delta2: float = 0.0
    eps: float = 1.0
    weight: float = 1.0
    input: str = "linear"

    def __post_init__(self):
        check_range("model.n", self.n, low=2)
        check_range("model.fmin", self.fmin, low=0.0, low_open=True)
        check_range("model.fmax", self.fmax, low=self.fmin, low_open=True)
        check_range("model.eps", self.eps, low=0.0, high=1.0)
        check_range("model.weight", self.weight, low=0.0)
        check_choice("model.spacing", self.spacing, ("log", "lin"))
        check_choice("model.input", self.input, ("linear", "active", "allfreq", "all2freq"))

    @property
    def freqs(self):
        import nrtjax as nrt

        f = nrt.log_freqs if self.spacing == "log" else nrt.lin_freqs
        return f(self.fmin, self.fmax, self.n)

    @property
    def max_freq(self) -> float:
        return self.fmax

    def build(self, **params) -> "nrt.GrFNN":
        import nrtjax as nrt

        p = _sweepable(self, params)
        weight = p.pop("weight")
        return nrt.GrFNN(self.freqs, **p, input=self.input, weight=weight, spacing=self.spacing)

    def readout(self, traj: "nrt.Trajectory", tail: int) -> dict:
        import jax.numpy as jnp

        amp = jnp.mean(jnp.abs(traj.ys[-tail:]), axis=0)
        k = jnp.argmax(amp)
        return {"amplitude": amp, "peak_amplitude": amp[k],
                "peak_frequency": jnp.asarray(self.freqs)[k], **_final(traj.ys[-1])}


@dataclasses.dataclass
class HopfConfig:
    """A Hopf normal-form oscillator at `freq` Hz."""

    SWEEPABLE: ClassVar = ("freq", "alpha", "beta")
    HEATMAP: ClassVar = "amplitude"
    SCALARS: ClassVar = ("amplitude",)
    freq: float = 1.0
    alpha: float = -0.1
    beta: float = -1.0

    def __post_init__(self):
        check_range("model.freq", self.freq, low=0.0, low_open=True)

    @property
    def max_freq(self) -> float:
        return self.freq

    def build(self, **params) -> "nrt.Hopf":
        import nrtjax as nrt

        return nrt.Hopf(**_sweepable(self, params))

    def readout(self, traj: "nrt.Trajectory", tail: int) -> dict:
        import jax.numpy as jnp

        return {"amplitude": jnp.mean(jnp.abs(traj.ys[-tail:]), axis=0), **_final(traj.ys[-1])}


@dataclasses.dataclass
class ASHLEConfig:
    """ASHLE (Roman et al. 2023); defaults are the paper's reference setting."""

    SWEEPABLE: ClassVar = ("f0", "lambda1", "lambda2", "gamma", "a", "b", "forcing")
    HEATMAP: ClassVar = "motor_hz"
    SCALARS: ClassVar = ("motor_hz", "sensory_hz", "motor_amplitude")
    f0: float = 2.0
    lambda1: float = 4.0
    lambda2: float = 2.0
    gamma: float = 0.02
    a: float = 1.0
    b: float = -1.0
    forcing: float = 1.0

    def __post_init__(self):
        check_range("model.f0", self.f0, low=0.0, low_open=True)
        for key in ("lambda1", "lambda2", "gamma", "forcing"):
            check_range(f"model.{key}", getattr(self, key), low=0.0)

    @property
    def max_freq(self) -> float:
        return self.f0

    def build(self, **params) -> "nrt.ASHLE":
        import nrtjax as nrt

        return nrt.ASHLE(**_sweepable(self, params))

    def readout(self, traj: "nrt.Trajectory", tail: int) -> dict:
        import jax.numpy as jnp

        ys = traj.ys
        return {"motor_hz": jnp.mean(ys.f[-tail:]), "sensory_hz": jnp.mean(ys.f_d[-tail:]),
                "motor_amplitude": jnp.mean(jnp.abs(ys.z[-tail:])),
                **_final(ys.z[-1], "final_z"), **_final(ys.d[-1], "final_d"),
                "final_f": ys.f[-1], "final_f_d": ys.f_d[-1]}


@dataclasses.dataclass
class LorenzConfig:
    """The Lorenz system (autonomous; pair it with `stimulus=silence`)."""

    SWEEPABLE: ClassVar = ("sigma", "rho", "beta")
    HEATMAP: ClassVar = "x_std"
    SCALARS: ClassVar = ("x_std", "z_mean")
    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8 / 3

    def __post_init__(self):
        for key in ("sigma", "rho", "beta"):
            check_range(f"model.{key}", getattr(self, key), low=0.0, low_open=True)

    @property
    def max_freq(self) -> float:
        return 0.0

    def build(self, **params) -> "nrt.Lorenz":
        import nrtjax as nrt

        return nrt.Lorenz(**_sweepable(self, params))

    def readout(self, traj: "nrt.Trajectory", tail: int) -> dict:
        import jax.numpy as jnp

        ys = traj.ys[-tail:]
        return {"x_std": jnp.std(ys[:, 0]), "z_mean": jnp.mean(ys[:, 2]),
                "final_state": traj.ys[-1]}


def _final(z, name: str = "final"):
    """A complex state as real and imaginary parts (NetCDF has no complex type)."""
    import jax.numpy as jnp

    return {f"{name}_real": jnp.real(z), f"{name}_imag": jnp.imag(z)}


# --- stimuli ------------------------------------------------------------------------------
@dataclasses.dataclass
class MetronomeConfig:
    """A complex metronome $A e^{i 2\\pi f t}$ (tempo_hz may be swept)."""

    SWEEPABLE: ClassVar = ("tempo_hz", "amplitude")
    tempo_hz: float = 2.0
    amplitude: float = 0.25
    duration: float = 20.0
    fs: float = 256.0

    def __post_init__(self):
        _check_timing(self)
        check_range("stimulus.tempo_hz", self.tempo_hz, low=0.0, low_open=True)
        check_range("stimulus.amplitude", self.amplitude, low=0.0)

    @property
    def max_freq(self) -> float:
        return self.tempo_hz

    def build(self, **params) -> "nrt.Signal":
        import nrtjax as nrt

        p = _sweepable(self, params)
        return nrt.metronome(p["tempo_hz"], self.duration, self.fs, amplitude=p["amplitude"])


@dataclasses.dataclass
class ClicksConfig:
    """An isochronous click train (30 ms exponential pulses) scaled by `amplitude`."""

    SWEEPABLE: ClassVar = ("amplitude",)
    tempo_hz: float = 2.0
    amplitude: float = 0.25
    tau: float = 0.03
    duration: float = 20.0
    fs: float = 256.0

    def __post_init__(self):
        _check_timing(self)
        check_range("stimulus.tempo_hz", self.tempo_hz, low=0.0, low_open=True)
        check_range("stimulus.amplitude", self.amplitude, low=0.0)
        check_range("stimulus.tau", self.tau, low=0.0, low_open=True)

    @property
    def max_freq(self) -> float:
        return self.tempo_hz

    def build(self, **params) -> "nrt.Signal":
        import nrtjax as nrt

        amplitude = _sweepable(self, params)["amplitude"]
        sig = nrt.click_train(self.tempo_hz, self.duration, self.fs, tau=self.tau)
        return nrt.Signal.sampled(sig.xs * amplitude, self.fs)


@dataclasses.dataclass
class SilenceConfig:
    """No input: spontaneous dynamics (and the autonomous Lorenz system)."""

    SWEEPABLE: ClassVar = ()
    duration: float = 20.0
    fs: float = 256.0

    def __post_init__(self):
        _check_timing(self)

    @property
    def max_freq(self) -> float:
        return 0.0

    def build(self, **params) -> "nrt.Signal":
        import nrtjax as nrt

        _sweepable(self, params)
        return nrt.silence(self.duration, self.fs)


def _check_timing(cfg):
    check_range("stimulus.duration", cfg.duration, low=0.0, low_open=True)
    check_range("stimulus.fs", cfg.fs, low=0.0, low_open=True)
    check_range("stimulus.duration * stimulus.fs", cfg.duration * cfg.fs, low=2.0,
                hint="The input needs at least two samples.")


# --- solvers ------------------------------------------------------------------------------
# name -> (module, class); imported when the solver is built.
_FIXED = {"rk4": ("nrtjax", "RK4"), "euler": ("diffrax", "Euler"), "heun": ("diffrax", "Heun"),
          "midpoint": ("diffrax", "Midpoint")}
_ADAPTIVE = {"tsit5": ("diffrax", "Tsit5"), "dopri5": ("diffrax", "Dopri5")}


def _solver_class(name: str):
    import importlib

    module, cls = {**_FIXED, **_ADAPTIVE}[name]
    return getattr(importlib.import_module(module), cls)


@dataclasses.dataclass
class SolverConfig:
    """A Diffrax solver: fixed step (`dt`, default the input's sample spacing) or adaptive
    (`rtol`/`atol` required: tolerances are always explicit)."""

    name: str = "rk4"
    dt: float | None = None
    rtol: float | None = None
    atol: float | None = None
    max_steps: int | None = None

    def __post_init__(self):
        check_choice("solver.name", self.name, (*_FIXED, *_ADAPTIVE))
        if self.dt is not None:
            check_range("solver.dt", self.dt, low=0.0, low_open=True)
        if self.name in _ADAPTIVE:
            if self.rtol is None or self.atol is None:
                raise ConfigError(f"solver.rtol and solver.atol are required for the adaptive "
                                  f"solver {self.name!r} (e.g. solver.rtol=1e-6 solver.atol=1e-8).")
            check_range("solver.rtol", self.rtol, low=0.0, low_open=True)
            check_range("solver.atol", self.atol, low=0.0, low_open=True)
        if self.max_steps is not None:
            check_range("solver.max_steps", self.max_steps, low=1)

    def step(self, fs: float) -> float:
        return 1.0 / fs if self.dt is None else self.dt

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `nrt.simulate` (solver, step-size controller, max_steps)."""
        import diffrax

        if self.name in _FIXED:
            return {"solver": _solver_class(self.name)()}
        return {"solver": _solver_class(self.name)(),
                "stepsize_controller": diffrax.PIDController(rtol=self.rtol, atol=self.atol),
                "max_steps": self.max_steps}


def check_run(model, stimulus, solver: SolverConfig, *, extra_freq: float = 0.0) -> None:
    """Checks across groups: sampling above Nyquist for the oscillators, and a step that
    divides the input's span."""
    top = max(model.max_freq, stimulus.max_freq, extra_freq)
    check_range("stimulus.fs", stimulus.fs, low=2 * top, low_open=True,
                hint=f"fs must exceed twice the highest oscillator or input frequency "
                     f"({top:g} Hz).")
    dt = solver.step(stimulus.fs)
    steps = stimulus.duration / dt
    if abs(steps - round(steps)) > 1e-6 * max(steps, 1.0):
        raise ConfigError(f"solver.dt={dt!r} does not divide stimulus.duration="
                          f"{stimulus.duration!r} into whole steps; choose duration / k.")


@dataclasses.dataclass
class ModelRunConfig(BaseConfig):
    """The common schema of jobs that drive one model with one stimulus (simulate, sweep):
    `model`, `stimulus` and `solver` come from their config groups; `tail` is the final
    fraction of the run that amplitudes and frequencies are averaged over."""

    model: Any = MISSING
    stimulus: Any = MISSING
    solver: SolverConfig = dataclasses.field(default_factory=SolverConfig)
    tail: float = 0.25

    def __post_init__(self):
        check_model_run(self)

    def tail_steps(self) -> int:
        n = int(round(self.stimulus.duration / self.solver.step(self.stimulus.fs))) + 1
        return max(1, int(math.ceil(self.tail * n)))


def check_model_run(cfg: ModelRunConfig, *, extra_freq: float = 0.0) -> None:
    """Validate a ModelRunConfig (types of the group nodes, ranges across groups)."""
    for key, options in (("model", GROUPS["model"]), ("stimulus", GROUPS["stimulus"])):
        value = getattr(cfg, key)
        if not isinstance(value, tuple(options.values())):
            raise ConfigError(f"{key} must be one of the config group options {list(options)} "
                              f"(e.g. {key}={next(iter(options))}), got {value!r}.")
    check_range("tail", cfg.tail, low=0.0, high=1.0, low_open=True)
    check_run(cfg.model, cfg.stimulus, cfg.solver, extra_freq=extra_freq)


GROUPS = {
    "model": {"grfnn": GrFNNConfig, "hopf": HopfConfig, "ashle": ASHLEConfig,
              "lorenz": LorenzConfig},
    "stimulus": {"metronome": MetronomeConfig, "clicks": ClicksConfig,
                 "silence": SilenceConfig},
}


def store_groups() -> None:
    """Register `GROUP/NAME_schema` for every option (conf/GROUP/NAME.yaml extends it)."""
    cs = ConfigStore.instance()
    for group, options in GROUPS.items():
        for name, schema in options.items():
            cs.store(group=group, name=f"{name}_schema", node=schema)
