"""The neural duet's figure: drummer tempo and phase, Lorenz melodist with its notes, waveform."""

import numpy as np


def duet_figure(info, *, tempo_bpm: float, audio: np.ndarray, sr: int, title: str = ""):
    """Four panels from a duet run (`nrtjax.audio.duet.BlockInfo` joined over blocks).

    1. the drummer's motor frequency in BPM (with the requested tempo) and its beats;
    2. the Lorenz trajectory (x-z plane) with the states at which notes started;
    3. the notes as a piano roll (opacity = velocity) over the drum hits;
    4. the waveform of the mix.

    **Arguments:** `info` (a `BlockInfo`), `tempo_bpm` (the requested tempo), `audio` (the
    mix, `(samples,)`), `sr` (its rate), `title` (a suptitle).

    **Returns:** a matplotlib `Figure` (save it with `nrtjax.io.save_figure`).
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(4, 1, figsize=(10, 11), constrained_layout=True)
    ax[0].plot(info.ts, 60.0 * info.f, color="k", lw=1.2, label="motor frequency f")
    ax[0].axhline(tempo_bpm, color="tab:red", ls=":", label=f"requested {tempo_bpm:g} BPM")
    if info.beats.size > 1:
        ibi_bpm = 60.0 / np.diff(info.beats)
        ax[0].plot(info.beats[1:], ibi_bpm, ".", color="tab:blue", ms=4, label="60 / beat interval")
    ax[0].set(xlabel="time (s)", ylabel="tempo (BPM)", title="ASHLE drummer")
    ax[0].legend(loc="lower right", fontsize=8)
    twin = ax[0].twinx()
    twin.plot(info.ts, np.mod(info.phase, 2 * np.pi), color="tab:gray", lw=0.4, alpha=0.5)
    twin.set_ylabel("motor phase (rad)", color="tab:gray")

    lor = info.lorenz
    ax[1].plot(lor[:, 0], lor[:, 2], color="0.6", lw=0.5)
    if info.notes:
        idx = np.searchsorted(info.ts, [n.time_s for n in info.notes]).clip(0, len(info.ts) - 1)
        sc = ax[1].scatter(lor[idx, 0], lor[idx, 2], c=[n.pitch for n in info.notes],
                           cmap="viridis", s=18, zorder=3)
        fig.colorbar(sc, ax=ax[1], label="MIDI pitch")
    ax[1].set(xlabel="x (-> scale degree)", ylabel="z (-> note length)",
              title="Lorenz melodist: trajectory and the states that became notes")

    for n in info.notes:
        ax[2].barh(n.pitch, n.length_s, left=n.time_s, height=0.8, color="tab:green",
                   alpha=0.3 + 0.7 * n.velocity)
    rows = {"kick": 0, "snare": 1, "hat": 2}
    low = min([n.pitch for n in info.notes], default=60) - 5
    for e in info.drum_events:
        ax[2].plot(e.time_s, low - 2 * rows[e.instrument], "|", color="tab:orange",
                   alpha=0.3 + 0.7 * e.velocity)
    ax[2].set(xlabel="time (s)", ylabel="MIDI pitch (drums below: kick, snare, hat)",
              title=f"{len(info.notes)} notes, {len(info.drum_events)} drum hits")

    t = np.arange(audio.shape[0]) / sr
    ax[3].plot(t, audio, color="k", lw=0.3)
    ax[3].set(xlabel="time (s)", ylabel="amplitude", ylim=(-1, 1), title="mix")
    if title:
        fig.suptitle(title)
    return fig
