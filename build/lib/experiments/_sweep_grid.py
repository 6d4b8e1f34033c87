"""Parse a sweep's `grid` (axis name -> values) without eval, and lay out its members.

An axis is given on the command line as

    grid.alpha=linspace(-1,0.5,256)     numpy.linspace(start, stop, num)
    grid.eps=logspace(-3,0,16)          10 ** linspace(start, stop, num)
    grid.freq=geomspace(0.5,8,32)       numpy.geomspace(start, stop, num)
    grid.beta1=arange(-2,0,0.5)         numpy.arange(start, stop, step)
    grid.weight=[0.5,1,2]               an explicit list
    grid.stimulus.tempo_hz=2.0          a single value

Bare names are model parameters; `stimulus.NAME` names a stimulus parameter.
"""

import math
import re

import numpy as np

from experiments._job import ConfigError

SYNTAX = ("linspace(start,stop,num), logspace(start,stop,num), geomspace(start,stop,num), "
          "arange(start,stop,step), [v1,v2,...] or a number")
_CALL = re.compile(r"^\s*(linspace|logspace|geomspace|arange)\s*\((.*)\)\s*$")
MAX_AXIS = 1_000_000


def _number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"grid.{key}: {text.strip()!r} is not a number; use {SYNTAX}.") from None
    if not math.isfinite(value):
        raise ConfigError(f"grid.{key}: {text.strip()!r} must be finite.")
    return value


def _count(key: str, value: float) -> int:
    if value != int(value) or not 1 <= value <= MAX_AXIS:
        raise ConfigError(f"grid.{key}: num={value:g} must be an integer in [1, {MAX_AXIS}].")
    return int(value)


def parse_axis(key: str, spec) -> np.ndarray:
    """The values of one grid axis, float64, 1-D, finite, non-empty.

    **Raises:** `ConfigError` naming `grid.KEY` and the accepted syntax.
    """
    if isinstance(spec, bool) or spec is None:
        raise ConfigError(f"grid.{key}={spec!r} is not a grid; use {SYNTAX}.")
    if isinstance(spec, (int, float)):
        return np.array([_number(key, str(spec))])
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ConfigError(f"grid.{key} is an empty list; give at least one value.")
        return np.array([_number(key, str(v)) for v in spec])
    if not isinstance(spec, str):
        raise ConfigError(f"grid.{key}={spec!r} is not a grid; use {SYNTAX}.")
    m = _CALL.match(spec)
    if m is None:
        return np.array([_number(key, spec)])
    name, args = m.group(1), [a for a in m.group(2).split(",")]
    if len(args) != 3:
        raise ConfigError(f"grid.{key}: {name} takes 3 arguments, got {len(args)} in {spec!r}.")
    a, b, c = (_number(key, x) for x in args)
    if name == "arange":
        if c == 0 or (b - a) / c <= 0:
            raise ConfigError(f"grid.{key}: arange({a:g},{b:g},{c:g}) is empty; the step must "
                              "be non-zero and point from start to stop.")
        values = np.arange(a, b, c)
        if values.size > MAX_AXIS:
            raise ConfigError(f"grid.{key}: {values.size} values exceed {MAX_AXIS}.")
        return values
    num = _count(key, c)
    if name == "linspace":
        return np.linspace(a, b, num)
    if name == "logspace":
        return np.logspace(a, b, num)
    if a <= 0 or b <= 0:
        raise ConfigError(f"grid.{key}: geomspace needs positive start and stop, got {spec!r}.")
    return np.geomspace(a, b, num)


def flatten_grid(grid: dict, prefix: str = "") -> dict:
    """`{"alpha": s, "stimulus": {"tempo_hz": s}}` -> `{"alpha": s, "stimulus.tempo_hz": s}`."""
    out = {}
    for key, spec in grid.items():
        name = f"{prefix}{key}"
        if isinstance(spec, dict):
            out.update(flatten_grid(spec, prefix=f"{name}."))
        else:
            out[name] = spec
    return out


def parse_grid(grid: dict) -> dict[str, np.ndarray]:
    """Axis name -> values, in the order given. A `model.` prefix is dropped."""
    axes = {}
    for key, spec in flatten_grid(grid).items():
        name = key.removeprefix("model.")
        if name in axes:
            raise ConfigError(f"grid.{key} is given twice (as {name}).")
        axes[name] = parse_axis(key, spec)
    return axes


def members(axes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every combination of the axes, flattened in C order (the last axis varies fastest)."""
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    return {name: m.reshape(-1) for name, m in zip(axes, mesh)}
