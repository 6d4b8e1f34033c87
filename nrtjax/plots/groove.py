"""The 5-panel groove analysis figure."""

import numpy as np

from ..audio.groove_drums import HAT, INSTRUMENTS, KICK, SNARE, STEPS


def groove_figure(groove, *, title: str = ""):
    """Onsets and beats; GrFNN amplitude over time; ASHLE tempo; beat phase; groove pattern.

    **Arguments:**

    - `groove`: a [`nrtjax.audio.groove.Groove`][].
    - `title`: figure title (e.g. the file name).

    **Returns:** a matplotlib `Figure` with 5 axes.
    """
    import matplotlib.pyplot as plt

    env, tr, ev = groove.envelope, groove.tracking, groove.events
    fig, axes = plt.subplots(5, 1, figsize=(11, 13), constrained_layout=True)
    t_env = np.arange(env.values.size) / env.fs
    ax = axes[0]
    ax.plot(t_env, env.values, color="0.35", lw=0.6, label="onset envelope")
    ax.vlines(groove.beats, 0, env.values.max(), color="tab:red", lw=0.7, alpha=0.7, label="beats")
    ax.set(xlabel="time (s)", ylabel="onset strength",
           title=f"1. onsets and beats ({groove.beats.size} beats, {groove.tempo_bpm:.1f} BPM)")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[1]
    prof = tr.profile
    extent = [tr.profile_ts[0], tr.profile_ts[-1], 0, tr.freqs.size]
    ax.imshow(prof.T, aspect="auto", origin="lower", cmap="magma", extent=extent)
    ticks = np.linspace(0, tr.freqs.size - 1, 5).astype(int)
    ax.set_yticks(ticks + 0.5, [f"{60 * tr.freqs[i]:.0f}" for i in ticks])
    ax.axhline(np.interp(np.log(tr.tempo_hz), np.log(tr.freqs), np.arange(tr.freqs.size)) + 0.5,
               color="cyan", ls=":", lw=1)
    ax.set(xlabel="time (s)", ylabel="oscillator (BPM)",
           title=f"2. GrFNN resonance |z| (dotted: global tempo {60 * tr.tempo_hz:.1f} BPM)")
    ax = axes[2]
    ax.plot(tr.ts, 60 * tr.freq, color="tab:blue", lw=0.8, label="ASHLE motor frequency")
    if groove.beats.size > 2:
        mids = 0.5 * (groove.beats[1:] + groove.beats[:-1])
        ax.plot(mids, 60 / np.diff(groove.beats), ".", ms=3, color="tab:red", label="beat intervals")
    ax.set(xlabel="time (s)", ylabel="tempo (BPM)", title="3. tempo: ASHLE frequency learning")
    ax.legend(loc="upper right", fontsize=8)
    ax = axes[3]
    rel = np.angle(np.exp(1j * (tr.phase - tr.forcing_phase)))
    ax.plot(tr.ts, rel, color="tab:purple", lw=0.6)
    ax.set(xlabel="time (s)", ylabel="rad", ylim=(-np.pi, np.pi),
           title="4. motor phase minus GrFNN forcing phase (flat = locked)")
    _pattern_panel(axes[4], ev)
    if title:
        fig.suptitle(title)
    return fig


def _pattern_panel(ax, ev) -> None:
    steps = np.arange(STEPS)
    ax.bar(steps, ev.pattern, color="0.8", label="song's onset pattern")
    colours = {KICK: "tab:red", SNARE: "tab:blue", HAT: "tab:green"}
    for inst, y in ((KICK, 1.3), (SNARE, 1.5), (HAT, 1.7)):
        sel = ev.instrument == inst
        if not np.any(sel):
            continue
        vel = np.array([ev.velocity[sel][ev.step[sel] == s].mean() if np.any(ev.step[sel] == s)
                        else 0.0 for s in steps])
        on = vel > 0
        ax.scatter(steps[on], np.full(on.sum(), y), s=120 * vel[on], color=colours[inst],
                   label=INSTRUMENTS[inst])
    ax.set_xticks(steps, [f"{s // 4 + 1}" if s % 4 == 0 else "." for s in steps])
    ax.set(xlabel="sixteenth in the bar", ylim=(0, 1.9), yticks=[0, 0.5, 1.0],
           title="5. groove pattern and AI drums (dot size = mean velocity)")
    ax.legend(loc="upper right", fontsize=8, ncol=4)
