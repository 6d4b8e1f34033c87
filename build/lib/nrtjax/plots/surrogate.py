"""Figure: ASHLE ground truth against the TCN surrogate on one song (seed's Figure 9)."""

import numpy as np
from jaxtyping import ArrayLike, Float


def plot_surrogate(ts: Float[ArrayLike, " time"], stimulus: ArrayLike, truth, pred, *,
                   title: str = "", window: tuple[float, float] = (0.0, 30.0)):
    """Four panels over `window` (s): the forcing, $\\cos$ of the motor phase, the motor
    frequency and the amplitude, ground truth (black) vs surrogate (red dashed).

    **Arguments:**

    - `ts`: times in seconds; `stimulus`: the complex forcing on `ts`.
    - `truth`, `pred`: objects with `phase`, `freq`, `amp` arrays on `ts`
        (e.g. `SurrogateOutput`).
    - `title`: figure title; `window`: the time span shown.

    **Returns:** the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    ts = np.asarray(ts)
    sel = (ts >= window[0]) & (ts <= window[1])
    t = ts[sel]
    fig, ax = plt.subplots(4, 1, figsize=(11, 8), sharex=True, constrained_layout=True)
    ax[0].plot(t, np.real(np.asarray(stimulus))[sel], color="0.4", lw=0.6)
    ax[0].set_ylabel("Re F(t)")
    series = [(np.cos, "phase", "cos(motor phase)"), (None, "freq", "motor freq (Hz)"),
              (None, "amp", "|z|")]
    for a, (fn, field, label) in zip(ax[1:], series):
        g = np.asarray(getattr(truth, field))[sel]
        p = np.asarray(getattr(pred, field))[sel]
        if fn is not None:
            g, p = fn(g), fn(p)
        a.plot(t, g, color="k", lw=1.0, label="ASHLE (ground truth)")
        a.plot(t, p, color="tab:red", lw=1.0, ls="--", label="TCN surrogate")
        a.set_ylabel(label)
    ax[1].legend(loc="upper right", fontsize=8)
    ax[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    return fig
