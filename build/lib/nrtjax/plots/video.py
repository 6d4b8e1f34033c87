"""The visual duet's dashboard: frames, motion features, oscillator dynamics, waveform."""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class VisualDuetTrace:
    """Everything the dashboard draws (host-side NumPy arrays).

    **Fields:**

    - `frames`: a few RGB frames; `frame_times`: their times in seconds.
    - `times`, `energy`, `vertical`: the motion features at frame times.
    - `bank_ts`, `bank_freqs`, `bank_amp`: the motion resonator bank's amplitude
        `(time, n)` on the oscillator grid.
    - `drum_ts`, `drum_phase`, `drum_tempo_bpm`: the drummer's unwrapped motor phase and
        instantaneous tempo; `motion_phase`: the motion's phase on `drum_ts`.
    - `beats`: beat times; `lorenz`: the melodist's state `(time, 3)` on `drum_ts`;
        `octave`: the register per block `(blocks,)` with `octave_ts` its times.
    - `audio`, `sr`: the duet's waveform.
    - `true_bpm`: the stimulus's true tempo or `None`; `title`: figure title.
    """

    frames: list
    frame_times: np.ndarray
    times: np.ndarray
    energy: np.ndarray
    vertical: np.ndarray
    bank_ts: np.ndarray
    bank_freqs: np.ndarray
    bank_amp: np.ndarray
    drum_ts: np.ndarray
    drum_phase: np.ndarray
    drum_tempo_bpm: np.ndarray
    motion_phase: np.ndarray
    beats: np.ndarray
    lorenz: np.ndarray
    octave_ts: np.ndarray
    octave: np.ndarray
    audio: np.ndarray
    sr: int
    true_bpm: float | None
    title: str


def visual_duet_dashboard(trace: VisualDuetTrace, *, metrics: dict | None = None):
    """The seed study's Figure 7 layout for one video.

    Rows: sample frames; motion energy and vertical position; the resonator bank's
    amplitude over frequency and time; the drummer (cosine of its phase against the
    motion's phase, and its tempo against the true tempo); the Lorenz melodist and its
    register; the duet's waveform with beats.

    **Returns:** a matplotlib `Figure` (save it with `nrtjax.io.save_figure`).
    """
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 14), constrained_layout=True)
    n_frames = max(1, len(trace.frames))
    gs = fig.add_gridspec(6, n_frames, height_ratios=[1.3, 1, 1.2, 1.4, 1, 1])
    for i, (img, t) in enumerate(zip(trace.frames, trace.frame_times)):
        ax = fig.add_subplot(gs[0, i])
        ax.imshow(img)
        ax.set_title(f"t = {t:.2f} s", fontsize=9)
        ax.axis("off")
    axes = [fig.add_subplot(gs[r, :]) for r in range(1, 6)]
    _features(axes[0], trace)
    _bank(axes[1], trace)
    _drummer(axes[2], trace)
    _melodist(axes[3], trace)
    _waveform(axes[4], trace)
    for ax in axes:
        ax.set_xlim(trace.drum_ts[0], trace.drum_ts[-1])
    head = trace.title
    if metrics:
        shown = [f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float))
                 and not isinstance(v, bool)]
        head += "\n" + ", ".join(shown)
    fig.suptitle(head, fontsize=10)
    return fig


def _features(ax, tr: VisualDuetTrace) -> None:
    ax.plot(tr.times, tr.energy, color="k", lw=1, label="motion energy")
    ax.set_ylabel("motion energy")
    ax2 = ax.twinx()
    ax2.plot(tr.times, tr.vertical, color="tab:green", lw=1, label="vertical position")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("height (0 bottom, 1 top)", color="tab:green")
    ax.set_title("motion features per frame")


def _bank(ax, tr: VisualDuetTrace) -> None:
    f = tr.bank_freqs
    ax.imshow(tr.bank_amp.T, aspect="auto", origin="lower", cmap="magma",
              extent=[tr.bank_ts[0], tr.bank_ts[-1], 0, f.size])
    ticks = np.linspace(0, f.size - 1, 6).astype(int)
    ax.set_yticks(ticks + 0.5, [f"{60 * f[i]:.0f}" for i in ticks])
    ax.set_ylabel("resonator (BPM)")
    ax.set_title("motion resonator bank |z| (GrFNN): its output forces the drummer")


def _drummer(ax, tr: VisualDuetTrace) -> None:
    ax.plot(tr.drum_ts, np.cos(tr.drum_phase), color="tab:red", lw=1, label="drummer cos(phase)")
    ax.plot(tr.drum_ts, np.cos(tr.motion_phase), color="tab:blue", lw=1, alpha=0.6,
            label="motion cos(phase)")
    ax.set_ylim(-1.15, 2.6)
    ax.set_ylabel("cos(phase)")
    ax.legend(loc="upper left", fontsize=8, ncols=2)
    ax2 = ax.twinx()
    ax2.plot(tr.drum_ts, tr.drum_tempo_bpm, color="tab:purple", lw=1.5, label="drummer tempo")
    if tr.true_bpm is not None:
        ax2.axhline(tr.true_bpm, color="tab:purple", ls=":", lw=1, label="true tempo")
    ax2.set_ylabel("tempo (BPM)", color="tab:purple")
    ax2.legend(loc="upper right", fontsize=8)
    ax.set_title("ASHLE drummer: phase against the motion's phase, and tempo")


def _melodist(ax, tr: VisualDuetTrace) -> None:
    ax.plot(tr.drum_ts, tr.lorenz[:, 0], color="tab:orange", lw=1, label="Lorenz x (pitch)")
    ax.set_ylabel("Lorenz x")
    ax2 = ax.twinx()
    ax2.step(tr.octave_ts, tr.octave, where="post", color="tab:green", lw=1.5)
    ax2.set_ylabel("register (octave)", color="tab:green")
    ax.set_title("Lorenz melodist on the drummer's clock; register from the vertical position")


def _waveform(ax, tr: VisualDuetTrace) -> None:
    t = np.arange(tr.audio.size) / tr.sr
    step = max(1, tr.audio.size // 20000)
    ax.plot(t[::step], tr.audio[::step], color="0.3", lw=0.5)
    for b in tr.beats:
        ax.axvline(b, color="tab:red", lw=0.5, alpha=0.5)
    ax.set(xlabel="time (s)", ylabel="amplitude", ylim=(-1, 1))
    ax.set_title("duet waveform (red: the drummer's beats)")
