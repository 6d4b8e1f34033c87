"""The built-in demo: a GrFNN listening to a syncopated rhythm, with its figure and metrics."""

import dataclasses

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import nrtjax as nrt
from experiments._job import BaseConfig, Run, check_range, job


@dataclasses.dataclass
class Config(BaseConfig):
    tempo_bpm: float = 120.0
    duration: float = 20.0
    fs: float = 256.0
    n_oscillators: int = 145
    fmin: float = 0.5
    fmax: float = 8.0

    def __post_init__(self):
        check_range("tempo_bpm", self.tempo_bpm, low=30.0, high=300.0)
        check_range("duration", self.duration, low=2.0)
        check_range("n_oscillators", self.n_oscillators, low=2)
        check_range("fmin", self.fmin, low=0.0, low_open=True)
        check_range("fmax", self.fmax, low=self.fmin, low_open=True)
        check_range("fs", self.fs, low=2 * self.fmax, low_open=True)


def rhythm_onsets(tempo_bpm: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """A syncopated 4/4 pattern (beats 1 and 3 strong, an off-beat eighth before 4)."""
    beat = 60.0 / tempo_bpm
    bar = np.array([0.0, 1.0, 2.0, 2.5, 3.0]) * beat
    vel = np.array([1.0, 0.6, 0.9, 0.5, 0.6])
    starts = np.arange(0.0, duration, 4 * beat)
    onsets = (starts[:, None] + bar[None, :]).reshape(-1)
    v = np.tile(vel, starts.size)
    keep = onsets < duration
    return onsets[keep], v[keep]


@job("demo", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    onsets, vel = rhythm_onsets(cfg.tempo_bpm, cfg.duration)
    sig = nrt.pulse_train(onsets, cfg.duration, cfg.fs, velocities=vel)
    freqs = nrt.log_freqs(cfg.fmin, cfg.fmax, cfg.n_oscillators)
    net = nrt.GrFNN(freqs, alpha=0.0, beta1=-1.0, beta2=-1.0, eps=1.0, weight=0.5)
    traj = nrt.simulate(net, sig, dt=1.0 / cfg.fs)
    amp = np.asarray(jnp.abs(traj.ys))
    tail = amp[traj.ts.shape[0] // 2:].mean(0)
    k = int(np.argmax(tail))
    metrics = {
        "tempo_bpm_input": cfg.tempo_bpm,
        "peak_frequency_hz": float(freqs[k]),
        "peak_tempo_bpm": float(60 * freqs[k]),
        "beat_frequency_hz": cfg.tempo_bpm / 60.0,
        "n_oscillators": cfg.n_oscillators,
    }
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), constrained_layout=True)
    t = np.asarray(traj.ts)
    axes[0].imshow(amp.T, aspect="auto", origin="lower", cmap="magma",
                   extent=[t[0], t[-1], 0, len(freqs)])
    ticks = np.linspace(0, len(freqs) - 1, 6).astype(int)
    axes[0].set_yticks(ticks, [f"{freqs[i]:.2g}" for i in ticks])
    axes[0].set(xlabel="time (s)", ylabel="oscillator frequency (Hz)",
                title="GrFNN amplitude |z| driven by a syncopated rhythm")
    axes[1].semilogx(freqs, tail, color="k")
    for h in (0.5, 1, 2, 4):
        axes[1].axvline(h * cfg.tempo_bpm / 60, color="tab:red", ls=":", lw=1)
    axes[1].set(xlabel="oscillator frequency (Hz)", ylabel="mean |z| (second half)",
                title=f"amplitude profile: peak at {freqs[k]:.3g} Hz; dotted: beat subdivisions")
    nrt.io.save_figure(fig, run.path("grfnn_demo.png"))
    nrt.io.write_npz(run.path("trajectory.npz"), ts=t, amplitude=amp, freqs=freqs)
    run.log(metrics)
    return metrics


if __name__ == "__main__":
    main()
