"""Hopf oscillator phase portraits (alpha -0.5, 0, 0.5, 1) and resonance curves (0.5-4 Hz).

Portraits: the autonomous Hopf normal form $\\dot z = z(\\alpha + i2\\pi f + \\beta|z|^2)$
from initial states on two rings (inside and outside the limit cycle), RK4. The final radius
is compared with the analytic $\\sqrt{-\\alpha/\\beta}$ for $\\alpha > 0$ (0 otherwise).

Resonance curves: the oscillator driven by $F e^{i2\\pi f_s t}$ for forcing frequencies
`fmin`-`fmax` Hz (log-spaced), one vmapped run per (alpha, f_s); the response is the
amplitude at the forcing frequency, $|\\langle z e^{-i2\\pi f_s t}\\rangle|$ over the second
half (equal to $|z|$ when 1:1 locked; small for a self-oscillator that does not lock). For $\\alpha \\le 0$ the driven steady state is unique and
exact: $r^2[(\\alpha + \\beta r^2)^2 + (2\\pi(f - f_s))^2] = F^2$; the measured curve is
compared with it.

metrics.json fields: `alphas`, `final_radius` (measured final radius per alpha, mean over
initial states), `final_radius_exact`, `radius_max_err` (max over alphas and initial states),
`limit_radius` ($\\sqrt{-\\alpha/\\beta}$ or 0), `forcing_hz`,
`resonance_peak_hz` (per alpha, interpolated), `natural_hz`, `steady_state_max_rel_err`
(per alpha <= 0, max over forcing frequencies; null for alpha > 0), `n_failed`, `seed`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import nrtjax as nrt
from experiments._job import BaseConfig, Run, check_range, job


@dataclasses.dataclass
class Config(BaseConfig):
    alphas: list[float] = dataclasses.field(default_factory=lambda: [-0.5, 0.0, 0.5, 1.0])
    beta: float = -1.0
    natural_hz: float = 2.0
    portrait_duration: float = 20.0
    n_initial: int = 8
    fmin: float = 0.5
    fmax: float = 4.0
    n_forcing: int = 36
    amplitude: float = 0.2
    duration: float = 40.0
    fs: float = 100.0

    def __post_init__(self):
        for a in self.alphas:
            check_range("alphas[]", a, low=-10.0, high=10.0)
        check_range("beta", self.beta, high=0.0, high_open=True)
        check_range("natural_hz", self.natural_hz, low=0.0, low_open=True)
        check_range("portrait_duration", self.portrait_duration, low=1.0)
        check_range("n_initial", self.n_initial, low=1)
        check_range("fmin", self.fmin, low=0.0, low_open=True)
        check_range("fmax", self.fmax, low=self.fmin, low_open=True)
        check_range("n_forcing", self.n_forcing, low=3)
        check_range("amplitude", self.amplitude, low=0.0, low_open=True)
        check_range("duration", self.duration, low=2.0)
        check_range("fs", self.fs, low=8 * self.fmax)


def steady_amplitude(alpha: float, beta: float, detune_hz: np.ndarray, amplitude: float) -> np.ndarray:
    """The driven steady-state $r$ for $\\alpha \\le 0$: the unique positive root of
    $\\beta^2 r^6 + 2\\alpha\\beta r^4 + (\\alpha^2 + \\omega^2) r^2 - F^2 = 0$."""
    out = []
    for w in 2 * np.pi * np.asarray(detune_hz):
        roots = np.roots([beta**2, 2 * alpha * beta, alpha**2 + w**2, -amplitude**2])
        real = roots[(np.abs(roots.imag) < 1e-9) & (roots.real > 0)].real
        out.append(np.sqrt(real.min()))
    return np.asarray(out)


def exact_radius(alpha: float, beta: float, r0: np.ndarray, t: float) -> np.ndarray:
    """The solution of $\\dot r = \\alpha r + \\beta r^3$ at time `t` from `r0`."""
    r0sq = np.asarray(r0) ** 2
    if alpha == 0:
        return np.sqrt(r0sq / (1 - 2 * beta * r0sq * t))
    e = np.exp(2 * alpha * t)
    return np.sqrt(alpha * r0sq * e / (alpha - beta * r0sq * (e - 1)))


def portraits(cfg):
    angles = 2 * np.pi * np.arange(cfg.n_initial) / cfg.n_initial
    rings = np.concatenate([0.1 * np.exp(1j * angles), 1.6 * np.exp(1j * angles)])
    sig = nrt.silence(cfg.portrait_duration, cfg.fs)

    @jax.jit
    def run(alpha):
        def one(z0):
            tr = nrt.simulate(nrt.Hopf(cfg.natural_hz, alpha, cfg.beta), sig, dt=1 / cfg.fs,
                              y0=z0, throw=False)
            return tr.ys, tr.ok
        return jax.vmap(one)(jnp.asarray(rings))

    out = [run(a) for a in cfg.alphas]
    return np.stack([np.asarray(o[0]) for o in out]), np.stack([np.asarray(o[1]) for o in out])


def resonance(cfg, forcing):
    @jax.jit
    def run(alpha, fs_hz):
        sig = nrt.metronome(fs_hz, cfg.duration, cfg.fs, amplitude=cfg.amplitude)
        tr = nrt.simulate(nrt.Hopf(cfg.natural_hz, alpha, cfg.beta), sig, dt=1 / cfg.fs, throw=False)
        half = tr.ts.shape[0] // 2
        # The response at the forcing frequency, |<z e^{-i 2 pi f_s t}>|: equal to |z| in a
        # 1:1 locked steady state, and small for a self-oscillator that does not lock.
        t = tr.ts[half:]
        rot = jax.lax.complex(jnp.cos(2 * jnp.pi * fs_hz * t), -jnp.sin(2 * jnp.pi * fs_hz * t))
        return jnp.abs(jnp.mean(tr.ys[half:] * rot)), tr.ok

    a, f = np.meshgrid(np.asarray(cfg.alphas), forcing, indexing="ij")
    amp, ok = jax.vmap(run)(jnp.asarray(a.reshape(-1)), jnp.asarray(f.reshape(-1)))
    return np.asarray(amp).reshape(a.shape), np.asarray(ok)


def _figure(cfg, zs, forcing, amp, analytic, path):
    n = len(cfg.alphas)
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.4), constrained_layout=True)
    for j, alpha in enumerate(cfg.alphas):
        ax = axes[0, j]
        for z in zs[j]:
            ax.plot(z.real, z.imag, lw=0.6)
        if alpha > 0:
            t = np.linspace(0, 2 * np.pi, 200)
            r = np.sqrt(-alpha / cfg.beta)
            ax.plot(r * np.cos(t), r * np.sin(t), "k--", lw=1)
        ax.set(aspect="equal", title=f"alpha = {alpha:g}", xlabel="Re z", ylabel="Im z")
        ax = axes[1, j]
        ax.semilogx(forcing, amp[j], "o-", ms=3, label="simulated")
        if analytic[j] is not None:
            ax.semilogx(forcing, analytic[j], "k--", lw=1, label="exact steady state")
        ax.axvline(cfg.natural_hz, color="tab:red", ls=":", lw=1)
        ax.set(xlabel="forcing frequency (Hz)", ylabel="|<z exp(-i2pi fs t)>|", title="resonance curve")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
    nrt.io.save_figure(fig, path)


@job("hopf_portraits", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    zs, ok_p = portraits(cfg)
    alphas = np.asarray(cfg.alphas)
    final = np.abs(zs[:, :, -1])
    r0 = np.abs(zs[0, :, 0])
    exact = np.stack([exact_radius(a, cfg.beta, r0, cfg.portrait_duration) for a in alphas])
    forcing = np.geomspace(cfg.fmin, cfg.fmax, cfg.n_forcing)
    amp, ok_r = resonance(cfg, forcing)
    peaks = np.asarray(nrt.analysis.resonance_peak(forcing, jnp.asarray(amp)))
    analytic, errs = [], []
    for j, a in enumerate(alphas):
        if a <= 0:
            ss = steady_amplitude(a, cfg.beta, cfg.natural_hz - forcing, cfg.amplitude)
            analytic.append(ss)
            errs.append(float(np.max(np.abs(amp[j] - ss) / ss)))
        else:
            analytic.append(None)
            errs.append(None)
    metrics = {
        "alphas": alphas, "final_radius": final.mean(1), "final_radius_exact": exact.mean(1),
        "radius_max_err": float(np.max(np.abs(final - exact))),
        "limit_radius": np.sqrt(np.maximum(alphas, 0) / -cfg.beta),
        "forcing_hz": forcing, "resonance_peak_hz": peaks, "natural_hz": cfg.natural_hz,
        "steady_state_max_rel_err": errs,
        "n_failed": int((~ok_p).sum() + (~ok_r).sum()), "seed": cfg.seed,
    }
    nrt.io.write_columns(run.path("resonance_curves.csv"), {
        "forcing_hz": forcing, **{f"amp_alpha_{a:g}": amp[j] for j, a in enumerate(alphas)}})
    _figure(cfg, zs, forcing, amp, analytic, run.path("hopf_portraits.png"))
    run.log({k: v for k, v in metrics.items() if np.ndim(v) == 0})
    return metrics


if __name__ == "__main__":
    main()
