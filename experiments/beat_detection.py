"""GrFNN beat detection: a 2 Hz pulse among its harmonics (30 oscillators, 0.5-8 Hz).

A canonical GrFNN layer (log-spaced natural frequencies, RK4 on the sample grid) listens to
a stimulus with a 2 Hz fundamental and harmonics:

- `clicks`: an isochronous click train (30 ms exponential decay per click) at `tempo_hz`,
  whose spectrum is the fundamental plus all its harmonics;
- `harmonics`: a complex tone $\\sum_{k=1}^{K} e^{i2\\pi k f t}$ with equal amplitudes, so no
  component is louder than the fundamental.

The default layer is damped ($\\alpha = -0.5$): its resonance half-width, about
$|\\alpha|/2\\pi \\approx 8\\%$ of $f$, is comparable to the grid spacing (10% for 30 oscillators
over 4 octaves), so the 2 Hz component, which falls between two oscillators (1.91 and
2.10 Hz), is seen by both. A critical layer ($\\alpha = 0$) responds in a band much narrower
than the grid spacing, so its profile samples the spectrum only where an oscillator happens
to sit on a harmonic (6.0 and 8.0 Hz do): run with `alpha=0` to see it (docs/ashle.md).

The amplitude profile is the mean $|z|$ of each oscillator over the second half. The
detected tempo is the interpolated peak of that profile ([`nrtjax.analysis.resonance_peak`][]);
the profile's local maxima are listed with the harmonic number they sit nearest to.

metrics.json fields: `tempo_hz` (true), `detected_hz`, `detected_error_pct`,
`peak_is_fundamental` (the global peak is within half an oscillator spacing of the
fundamental, in log frequency), `local_peaks_hz`, `local_peaks_harmonic` (peak / tempo),
`amplitude_at_harmonics` (profile interpolated at k x tempo, k = 1..4), `n_oscillators`,
`stimulus`, `n_failed`, `seed`.
"""

import dataclasses

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import nrtjax as nrt
from experiments._job import BaseConfig, Run, check_choice, check_range, job


@dataclasses.dataclass
class Config(BaseConfig):
    input: str = "clicks"  # not `stimulus`: Hydra reads `stimulus=` as the conf/stimulus group
    tempo_hz: float = 2.0
    n_harmonics: int = 4
    amplitude: float = 0.25
    duration: float = 30.0
    fs: float = 256.0
    n_oscillators: int = 30
    fmin: float = 0.5
    fmax: float = 8.0
    alpha: float = -0.5
    beta1: float = -1.0
    beta2: float = -1.0
    eps: float = 1.0

    def __post_init__(self):
        check_choice("input", self.input, ("clicks", "harmonics"))
        check_range("tempo_hz", self.tempo_hz, low=0.0, low_open=True)
        check_range("n_harmonics", self.n_harmonics, low=1)
        check_range("amplitude", self.amplitude, low=0.0, low_open=True)
        check_range("duration", self.duration, low=2.0)
        check_range("n_oscillators", self.n_oscillators, low=3)
        check_range("fmin", self.fmin, low=0.0, low_open=True)
        check_range("fmax", self.fmax, low=self.fmin, low_open=True)
        check_range("fs", self.fs, low=4 * max(self.fmax, self.n_harmonics * self.tempo_hz))
        check_range("eps", self.eps, low=0.0, high=1.0)


def make_stimulus(cfg) -> nrt.Signal:
    if cfg.input == "clicks":
        sig = nrt.click_train(cfg.tempo_hz, cfg.duration, cfg.fs)
        return nrt.Signal(sig.ts, cfg.amplitude * sig.xs)
    t = np.arange(int(round(cfg.duration * cfg.fs)) + 1) / cfg.fs
    k = np.arange(1, cfg.n_harmonics + 1)
    xs = np.exp(2j * np.pi * cfg.tempo_hz * t[:, None] * k[None, :]).sum(1)
    return nrt.Signal(t, cfg.amplitude * xs / cfg.n_harmonics)


def local_peaks(freqs: np.ndarray, profile: np.ndarray, rel_height: float = 0.1) -> np.ndarray:
    """Indices of local maxima of the profile above `rel_height` x its range above the minimum."""
    p = np.asarray(profile)
    floor = p.min() + rel_height * (p.max() - p.min())
    inner = (p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:]) & (p[1:-1] > floor)
    idx = list(np.flatnonzero(inner) + 1)
    if p[0] > p[1] and p[0] > floor:
        idx.insert(0, 0)
    if p[-1] > p[-2] and p[-1] > floor:
        idx.append(len(p) - 1)
    return np.asarray(idx, dtype=int)


def _figure(cfg, ts, amp, freqs, profile, detected, path):
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), constrained_layout=True)
    axes[0].imshow(amp.T, aspect="auto", origin="lower", cmap="magma",
                   extent=[ts[0], ts[-1], 0, len(freqs)])
    ticks = np.linspace(0, len(freqs) - 1, 6).astype(int)
    axes[0].set_yticks(ticks, [f"{freqs[i]:.2g}" for i in ticks])
    axes[0].set(xlabel="time (s)", ylabel="oscillator (Hz)", title=f"GrFNN |z|, stimulus: {cfg.input}")
    axes[1].semilogx(freqs, profile, "k.-")
    for k in range(1, 5):
        axes[1].axvline(k * cfg.tempo_hz, color="tab:red", ls=":", lw=1)
    axes[1].axvline(detected, color="tab:blue", lw=1.5, label=f"detected {detected:.3f} Hz")
    axes[1].set(xlabel="oscillator frequency (Hz)", ylabel="mean |z| (second half)")
    axes[1].legend(fontsize=8)
    nrt.io.save_figure(fig, path)


@job("beat_detection", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    sig = make_stimulus(cfg)
    freqs = nrt.log_freqs(cfg.fmin, cfg.fmax, cfg.n_oscillators)
    net = nrt.GrFNN(freqs, alpha=cfg.alpha, beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.eps)
    traj = nrt.simulate(net, sig, dt=1 / cfg.fs, throw=False)
    amp = np.asarray(jnp.abs(traj.ys))
    ts = np.asarray(traj.ts)
    profile = amp[ts.shape[0] // 2:].mean(0)
    detected = float(nrt.analysis.resonance_peak(freqs, jnp.asarray(profile)))
    spacing = np.log(freqs[1] / freqs[0])
    peaks = local_peaks(freqs, profile)
    harmonics = cfg.tempo_hz * np.arange(1, 5)
    at_h = np.interp(np.log(harmonics), np.log(freqs), profile, left=np.nan, right=np.nan)
    metrics = {
        "tempo_hz": cfg.tempo_hz, "detected_hz": detected,
        "detected_error_pct": 100 * (detected - cfg.tempo_hz) / cfg.tempo_hz,
        "peak_is_fundamental": bool(abs(np.log(detected / cfg.tempo_hz)) < spacing / 2),
        "local_peaks_hz": freqs[peaks], "local_peaks_harmonic": freqs[peaks] / cfg.tempo_hz,
        "amplitude_at_harmonics": at_h, "n_oscillators": cfg.n_oscillators,
        "stimulus": cfg.input, "n_failed": int(not bool(traj.ok)), "seed": cfg.seed,
    }
    nrt.io.write_columns(run.path("amplitude_profile.csv"), {"freq_hz": freqs, "mean_amplitude": profile})
    _figure(cfg, ts, amp, freqs, profile, detected, run.path("beat_detection.png"))
    run.log({k: v for k, v in metrics.items() if np.ndim(v) == 0 and not isinstance(v, str)})
    return metrics


if __name__ == "__main__":
    main()
