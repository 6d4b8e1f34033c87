"""Simulate one model driven by one stimulus: trajectory, figure and readouts."""

import dataclasses

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import nrtjax as nrt
from experiments._groups import (
    ASHLEConfig,
    GrFNNConfig,
    LorenzConfig,
    ModelRunConfig,
    store_groups,
)
from experiments._job import Run, check_range, job

store_groups()


@dataclasses.dataclass
class Config(ModelRunConfig):
    """`ModelRunConfig` plus `save_every`: keep every k-th state in trajectory.npz."""

    save_every: int = 1

    def __post_init__(self):
        super().__post_init__()
        check_range("save_every", self.save_every, low=1)


def run_model(cfg: ModelRunConfig, *, throw: bool = True) -> tuple[nrt.Trajectory, dict]:
    """Build and integrate the configured model; return the trajectory and its readouts."""
    model = cfg.model.build()
    signal = cfg.stimulus.build()
    dt = cfg.solver.step(cfg.stimulus.fs)
    traj = nrt.simulate(model, signal, dt=dt, **cfg.solver.options(), throw=throw)
    return traj, cfg.model.readout(traj, cfg.tail_steps())


def _plot(cfg: Config, traj: nrt.Trajectory, readout: dict):
    ts = np.asarray(traj.ts)
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), constrained_layout=True)
    m = cfg.model
    if isinstance(m, GrFNNConfig):
        amp = np.abs(np.asarray(traj.ys))
        axes[0].imshow(amp.T, aspect="auto", origin="lower", cmap="magma",
                       extent=[ts[0], ts[-1], 0, m.n])
        ticks = np.linspace(0, m.n - 1, 6).astype(int)
        axes[0].set_yticks(ticks, [f"{m.freqs[i]:.2g}" for i in ticks])
        axes[0].set(xlabel="time (s)", ylabel="oscillator frequency (Hz)", title="GrFNN |z|")
        axes[1].semilogx(m.freqs, np.asarray(readout["amplitude"]), color="k")
        axes[1].set(xlabel="oscillator frequency (Hz)", ylabel=f"mean |z| (last {cfg.tail:.0%})")
    elif isinstance(m, ASHLEConfig):
        axes[0].plot(ts, np.real(np.asarray(traj.ys.z)), lw=0.6, label="Re z (motor)")
        axes[0].plot(ts, np.real(np.asarray(traj.ys.d)), lw=0.6, label="Re d (sensory)")
        axes[1].plot(ts, np.asarray(traj.ys.f), label="f (motor)")
        axes[1].plot(ts, np.asarray(traj.ys.f_d), label="f_d (sensory)")
        axes[1].set(ylabel="frequency (Hz)")
        for ax in axes:
            ax.legend(loc="upper right")
    elif isinstance(m, LorenzConfig):
        ys = np.asarray(traj.ys)
        for i, name in enumerate("xyz"):
            axes[0].plot(ts, ys[:, i], lw=0.6, label=name)
        axes[0].legend(loc="upper right")
        axes[1].plot(ys[:, 0], ys[:, 2], lw=0.4, color="k")
        axes[1].set(xlabel="x", ylabel="z")
    else:
        z = np.asarray(traj.ys)
        axes[0].plot(ts, np.real(z), lw=0.6, color="k")
        axes[0].set(ylabel="Re z")
        axes[1].plot(ts, np.abs(z), color="k")
        axes[1].set(ylabel="|z|")
    axes[-1 if not isinstance(m, (GrFNNConfig, LorenzConfig)) else 0].set_xlabel("time (s)")
    stim = type(cfg.stimulus).__name__.removesuffix("Config").lower()
    fig.suptitle(f"{type(m).__name__.removesuffix('Config')} "
                 + ("(autonomous)" if isinstance(m, LorenzConfig) else f"driven by {stim}"))
    return fig


@job("simulate", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    traj, readout = run_model(cfg)
    fig = _plot(cfg, traj, readout)
    nrt.io.save_figure(fig, run.path("trajectory.png"))
    k = cfg.save_every
    leaves = {f"ys_{i}": np.asarray(leaf)[::k]
              for i, leaf in enumerate(jax.tree_util.tree_leaves(traj.ys))}
    nrt.io.write_npz(run.path("trajectory.npz"), ts=np.asarray(traj.ts)[::k], **leaves,
                     **{k_: np.asarray(v) for k_, v in readout.items()})
    metrics = {key: float(readout[key]) for key in cfg.model.SCALARS}
    metrics.update(ok=bool(traj.ok), steps=int(traj.ts.shape[0] - 1),
                   duration_s=cfg.stimulus.duration)
    run.log(metrics)
    return metrics


if __name__ == "__main__":
    main()
