"""Sweep a parameter grid as one vmapped job over all local devices: NetCDF table + heat map."""

import dataclasses
import math
import os
import sys
import time
from typing import Any

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

import nrtjax as nrt
from experiments._groups import (
    GrFNNConfig,
    LorenzConfig,
    ModelRunConfig,
    check_model_run,
    store_groups,
)
from experiments._job import ConfigError, Run, check_choice, check_range, job
from experiments._sweep_grid import members, parse_grid
from nrtjax.io import atomic_path, write_json

store_groups()

# Test hook: raise right after chunk K is written, as a kill would (tests/test_sweep.py).
FAIL_AFTER_ENV = "NRTJAX_SWEEP_FAIL_AFTER_CHUNK"
# Tests of Ctrl-C: hold after this chunk (up to a minute), so the signal lands mid-run.
HOLD_AFTER_ENV = "NRTJAX_SWEEP_HOLD_AFTER_CHUNK"


@dataclasses.dataclass
class Config(ModelRunConfig):
    """`ModelRunConfig` plus the `grid` (axis -> values, see experiments/_sweep_grid.py),
    `chunk_size` members per checkpointed chunk, and the `heatmap` readout to plot."""

    grid: dict[str, Any] = dataclasses.field(default_factory=dict)
    chunk_size: int = 256
    heatmap: str | None = None

    def __post_init__(self):
        axes = self.axes()
        top = 0.0
        for name, values in axes.items():
            _check_axis(self, name, values)
            if name in ("freq", "stimulus.tempo_hz"):
                top = max(top, float(values.max()))
        check_model_run(self, extra_freq=top)
        check_range("chunk_size", self.chunk_size, low=1)
        if self.heatmap is not None:
            check_choice("heatmap", self.heatmap, self.model.SCALARS)

    def axes(self) -> dict[str, np.ndarray]:
        if not self.grid:
            raise ConfigError(
                "grid is empty: give at least one axis, e.g. grid.alpha=linspace(-1,0.5,64) "
                f"(sweepable here: {', '.join(_sweepable(self))}), or experiment=alpha_beta_map.")
        return parse_grid(self.grid)


def _sweepable(cfg: Config) -> list[str]:
    return [*cfg.model.SWEEPABLE, *(f"stimulus.{k}" for k in cfg.stimulus.SWEEPABLE)]


def _check_axis(cfg: Config, name: str, values: np.ndarray) -> None:
    """Every grid value must be a valid config value (eps in [0, 1], amplitude >= 0, ...)."""
    if name not in _sweepable(cfg):
        raise ConfigError(
            f"grid.{name} is not sweepable for model={type(cfg.model).__name__} and "
            f"stimulus={type(cfg.stimulus).__name__}; sweepable: {', '.join(_sweepable(cfg))}. "
            "Parameters that change shapes (model.n, stimulus.duration, stimulus.fs, groups) "
            "take a multirun instead: nrtjax sweep -m model.n=65,145 ...")
    group, key = ("stimulus", name[9:]) if name.startswith("stimulus.") else ("model", name)
    for v in (values.min(), values.max()):
        try:
            dataclasses.replace(getattr(cfg, group), **{key: float(v)})
        except ConfigError as e:
            raise ConfigError(f"grid.{name} contains {float(v):g}: {e}") from None


def member_function(cfg: Config, names: list[str]):
    """One member: build model and stimulus from (traced) parameters, simulate, read out."""
    model_keys = [n for n in names if not n.startswith("stimulus.")]
    stim_keys = [n for n in names if n.startswith("stimulus.")]
    dt, options, tail = cfg.solver.step(cfg.stimulus.fs), cfg.solver.options(), cfg.tail_steps()

    def member(p: dict) -> dict:
        model = cfg.model.build(**{k: p[k] for k in model_keys})
        signal = cfg.stimulus.build(**{k[9:]: p[k] for k in stim_keys})
        traj = nrt.simulate(model, signal, dt=dt, **options, throw=False)
        return {**cfg.model.readout(traj, tail), "ok": traj.ok}

    return member


def _spec(cfg: Config, axes: dict) -> dict:
    return {"model": type(cfg.model).__name__, "stimulus": type(cfg.stimulus).__name__,
            **{k: dataclasses.asdict(getattr(cfg, k)) for k in ("model", "stimulus", "solver")},
            "tail": cfg.tail, "chunk_size": cfg.chunk_size,
            "axes": {k: v.tolist() for k, v in axes.items()}}


def _check_resume(run: Run, spec: dict) -> None:
    path = run.checkpoint_path("sweep_spec.json")
    if path.exists():
        import json

        old = json.loads(path.read_text())
        diff = [k for k in sorted(set(old) | set(spec)) if old.get(k) != spec.get(k)]
        if diff:
            raise ConfigError(
                f"{run.dir} holds the chunks of a different sweep ({', '.join(diff)} differ). "
                "Use another resume= directory, or delete this one to start again.")
    else:
        write_json(path, spec)


def run_chunks(run: Run, cfg: Config, flat: dict[str, np.ndarray]) -> dict:
    """Compute (or reload) every chunk of members; return the chunk outputs and timings."""
    size = next(iter(flat.values())).shape[0]
    chunk = min(cfg.chunk_size, size)
    n_chunks = math.ceil(size / chunk)
    evaluate = nrt.sharded_vmap(member_function(cfg, list(flat)))
    fail_after = os.environ.get(FAIL_AFTER_ENV)
    hold_after = os.environ.get(HOLD_AFTER_ENV)
    parts, resumed, computed, seconds = [], 0, 0, 0.0
    bar = run.progress(total=size, desc=f"sweep ({jax.device_count()} device(s))")
    for k in range(n_chunks):
        name = f"sweep_chunk_{k:05d}"
        saved = run.load_checkpoint(name)
        lo, hi = k * chunk, min((k + 1) * chunk, size)
        if saved is None:
            start = time.perf_counter()
            # The last chunk is padded to full size, so every chunk reuses one compilation.
            idx = np.minimum(np.arange(lo, lo + chunk), size - 1)
            out = jax.device_get(evaluate({n: v[idx] for n, v in flat.items()}))
            saved = {n: np.asarray(v)[: hi - lo] for n, v in out.items()}
            run.save_checkpoint(name, **saved)
            seconds += time.perf_counter() - start
            computed += hi - lo
            run.log({"members_done": hi, "members_ok": int(saved["ok"].sum())}, step=k)
        else:
            resumed += 1
        parts.append(saved)
        bar.update(hi - lo)
        if fail_after is not None and k == int(fail_after):
            raise RuntimeError(f"{FAIL_AFTER_ENV}={fail_after}: simulated kill after chunk {k}")
        if hold_after is not None and k == int(hold_after):
            time.sleep(60.0)
    bar.close()
    out = {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}
    return {"out": out, "chunks": n_chunks, "resumed": resumed, "seconds": seconds,
            "computed": computed}


def to_dataset(cfg: Config, axes: dict[str, np.ndarray], out: dict) -> xr.Dataset:
    """Readouts as an xarray Dataset with one dimension per grid axis."""
    shape = tuple(v.size for v in axes.values())
    coords: dict[str, Any] = {k: v for k, v in axes.items()}
    data = {}
    for name, arr in out.items():
        arr = arr.reshape(shape + arr.shape[1:])
        extra = []
        for i, n in enumerate(arr.shape[len(shape):]):
            if isinstance(cfg.model, GrFNNConfig) and n == cfg.model.n:
                extra.append("frequency")
                coords["frequency"] = cfg.model.freqs
            elif isinstance(cfg.model, LorenzConfig) and n == 3:
                extra.append("component")
                coords["component"] = np.array(["x", "y", "z"])
            else:
                extra.append(f"{name}_dim{i}")
        data[name] = (list(axes) + extra, arr.astype(np.uint8) if name == "ok" else arr)
    ds = xr.Dataset(data, coords=coords)
    ds["ok"].attrs["description"] = "1 where the integration succeeded, 0 where it diverged"
    ds.attrs.update(model=type(cfg.model).__name__.removesuffix("Config"),
                    stimulus=type(cfg.stimulus).__name__.removesuffix("Config"),
                    solver=cfg.solver.name, tail=cfg.tail)
    return ds


def plot_heatmap(ds: xr.Dataset, var: str, axes: dict[str, np.ndarray]):
    """The readout `var` over the first two axes (others at their middle value); grey = failed."""
    names = list(axes)
    sel = {n: axes[n].size // 2 for n in names[2:]}
    da = ds[var].where(ds["ok"] == 1).isel(sel)
    bad = (ds["ok"] == 0).isel(sel).values
    fig, ax = plt.subplots(figsize=(7, 5), constrained_layout=True)
    if len(names) == 1:
        ax.plot(axes[names[0]], da.values, "k.-")
        if bad.any():  # failed members: red crosses on the axis
            ax.plot(axes[names[0]][bad], np.full(int(bad.sum()), np.nanmin(da.values)
                    if np.isfinite(da.values).any() else 0.0), "rx", label="failed")
            ax.legend()
        ax.set(xlabel=names[0], ylabel=var)
    else:
        x, y = axes[names[1]], axes[names[0]]
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("0.7")
        mesh = ax.pcolormesh(x, y, np.ma.masked_invalid(da.values), cmap=cmap, shading="nearest")
        fig.colorbar(mesh, ax=ax, label=var)
        if bad.any():  # failed members: grey cells, crossed
            iy, ix = np.nonzero(bad)
            ax.plot(x[ix], y[iy], "rx", ms=4, ls="none", label="failed")
            ax.legend(loc="upper right")
        ax.set(xlabel=names[1], ylabel=names[0])
    fixed = ", ".join(f"{n}={axes[n][i]:.3g}" for n, i in sel.items())
    ax.set_title(f"{ds.attrs['model']} sweep: {var}" + (f" at {fixed}" if fixed else ""))
    return fig


def failed_members(ds: xr.Dataset, axes: dict[str, np.ndarray]) -> list[dict]:
    """The grid parameters of every member whose integration failed."""
    bad = np.argwhere(ds["ok"].values == 0)
    names = list(axes)
    return [{n: float(axes[n][i]) for n, i in zip(names, idx)} for idx in bad]


@job("sweep", Config, open_keys=("grid",))
def main(run: Run) -> dict:
    cfg = run.cfg
    axes = cfg.axes()
    flat = members(axes)
    _check_resume(run, _spec(cfg, axes))
    res = run_chunks(run, cfg, flat)
    ds = to_dataset(cfg, axes, res["out"])
    with atomic_path(run.path("sweep.nc")) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4")
    var = cfg.heatmap or cfg.model.HEATMAP
    nrt.io.save_figure(plot_heatmap(ds, var, axes), run.path("heatmap.png"))
    values = ds[var].where(ds["ok"] == 1)
    n_ok = int(ds["ok"].sum())
    metrics = {"members": int(ds["ok"].size), "members_ok": n_ok,
               "members_failed": int(ds["ok"].size) - n_ok, "chunks": res["chunks"],
               "chunks_resumed": res["resumed"], "devices": jax.device_count(),
               "platform": jax.devices()[0].platform, "compute_seconds": res["seconds"],
               "members_per_second": res["computed"] / res["seconds"] if res["seconds"] else None,
               "heatmap": var}
    failed = failed_members(ds, axes)
    if failed:
        metrics["failed_members"] = failed[:1000]
        shown = "; ".join(", ".join(f"{k}={v:g}" for k, v in m.items()) for m in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        print(f"nrtjax sweep: warning: {len(failed)} member(s) failed (integration diverged): "
              f"{shown}{more}; listed in metrics.json (failed_members), crossed in heatmap.png",
              file=sys.stderr)
    if n_ok:
        best = values.argmax(...)
        metrics[f"{var}_max"] = float(values.max())
        metrics[f"{var}_min"] = float(values.min())
        metrics["argmax"] = {n: float(axes[n][int(best[n])]) for n in axes}
    return metrics


if __name__ == "__main__":
    main()
