"""The EEG-duet dashboard: raw EEG, biomarkers, parameters, oscillator dynamics, latency."""

import numpy as np

from ..eeg.biomarkers import BIOMARKERS
from ..eeg.io import EEGRecording
from ..eeg.mapping import LORENZ_CRITICAL_RHO


def _raw_panel(ax, rec: EEGRecording, max_channels: int = 8):
    idx = np.linspace(0, len(rec.ch_names) - 1, min(max_channels, len(rec.ch_names)))
    idx = np.unique(idx.round().astype(int))
    x = rec.data[idx] * 1e6
    x = x - np.median(x, axis=1, keepdims=True)
    step = 4 * np.median(np.std(x, axis=1)) + 1e-9
    t = np.arange(rec.data.shape[1]) / rec.fs
    stride = max(1, rec.data.shape[1] // 20000)            # keep the figure light
    for k, i in enumerate(idx):
        ax.plot(t[::stride], x[k, ::stride] - k * step, lw=0.4, color="k")
    ax.set_yticks(-np.arange(len(idx)) * step, [rec.ch_names[i] for i in idx])
    ax.set(title=f"raw EEG ({len(rec.ch_names)} channels, {rec.fs:g} Hz; spacing "
                 f"{step:.0f} µV)", xlim=(t[0], t[-1]))


def eeg_dashboard(rec: EEGRecording, result, *, title: str = "", stats: dict | None = None):
    """The dashboard of one streamed recording (as the seed study's Figure 4).

    **Arguments:**

    - `rec`: the recording that was streamed (raw samples, volts).
    - `result`: its [`nrtjax.eeg.stream.StreamResult`][] (biomarkers, parameters,
        latencies and the engine's per-block `BlockInfo`s with `ts`, `f`, `lorenz`).
    - `title`: figure title; `stats`: latency statistics to print on the last panel.

    **Returns:** a matplotlib `Figure` with five panels: raw EEG; normalised biomarkers;
    the mapped parameters; the drummer's motor tempo and the melodist's Lorenz $x$;
    per-block latency.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(5, 1, figsize=(11, 14), constrained_layout=True,
                             gridspec_kw={"height_ratios": [2.2, 1.2, 1.2, 1.4, 1.0]})
    _raw_panel(axes[0], rec)
    t = result.times
    for j, name in enumerate(BIOMARKERS):
        axes[1].semilogy(t, result.normalised[:, j], lw=1.2, label=name)
    axes[1].axhline(1.0, color="grey", ls=":", lw=1)
    axes[1].set(title="biomarkers / subject baseline (1 = baseline)", xlim=(0, t[-1]))
    axes[1].legend(ncol=4, fontsize=8, loc="upper left")
    p = result.params
    ax = axes[2]
    ax.plot(t, p["rho"], color="tab:red", label="Lorenz rho")
    ax.axhline(LORENZ_CRITICAL_RHO, color="tab:red", ls=":", lw=1)
    ax.plot(t, 4 * p["lambda2"], color="tab:blue", label="4 x lambda2 (elasticity)")
    ax.plot(t, 4 * p["lambda1"], color="tab:green", label="4 x lambda1 (learning)")
    ax.set(title="duet parameters (dotted: rho = 24.74, chaos above)", xlim=(0, t[-1]))
    ax.legend(ncol=3, fontsize=8, loc="upper left")
    _dynamics_panel(axes[3], result)
    lat_ms = result.latency_s * 1e3
    axes[4].plot(t, lat_ms, ".", ms=2, color="k")
    axes[4].axhline(50.0, color="tab:red", ls="--", lw=1, label="50 ms target")
    text = "" if stats is None else (f"p50 {stats['latency_ms_p50']:.1f} ms, p99 "
                                     f"{stats['latency_ms_p99']:.1f} ms, real-time factor "
                                     f"{stats['realtime_factor']:.1f}")
    axes[4].set(title=f"per-block compute latency ({text})", xlabel="time (s)", ylabel="ms",
                xlim=(0, t[-1]))
    axes[4].legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    return fig


def _dynamics_panel(ax, result):
    infos = result.infos
    ts = np.concatenate([np.asarray(i.ts) for i in infos])
    f = np.concatenate([np.asarray(i.f) for i in infos])
    lx = np.concatenate([np.asarray(i.lorenz)[:, 0] for i in infos])
    ax.plot(ts, 60 * f, color="tab:purple", lw=1.2, label="drummer motor tempo 60 f (BPM)")
    ax.plot(result.times, result.params["tempo_bpm"], color="tab:purple", ls=":", lw=1,
            label="spontaneous tempo 60 f0 (BPM)")
    ax.set(ylabel="BPM", xlim=(0, result.times[-1]),
           title="oscillator dynamics: ASHLE drummer and Lorenz melodist")
    ax2 = ax.twinx()
    ax2.plot(ts, lx, color="tab:orange", lw=0.6, alpha=0.8, label="Lorenz x")
    ax2.set_ylabel("Lorenz x")
    lines = ax.get_lines()[:2] + ax2.get_lines()[:1]
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, ncol=3, loc="upper left")
