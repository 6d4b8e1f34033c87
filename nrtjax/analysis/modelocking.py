"""n:m mode locking of a canonical oscillator to a periodic stimulus: resonance order and
measured locking ranges (the "stability" of a musical interval).

A canonical oscillator (Large, Almonte & Velasco 2010) with the all-harmonics input
$P(x)A(z)$ and $x = F e^{i 2\\pi f_x t}$ contains the resonant monomial
$\\varepsilon^{(u+l-2)/2} x^u \\bar z^{\\,l-1}$ for an oscillator near $f_z = (u/l) f_x$:
the simpler the ratio $u{:}l$, the lower the order $u + l - 2$ and the stronger (wider) the
locking. [`locking_widths`][] measures that width: a bank of uncoupled oscillators with
natural frequencies $(u/l) f_x (1 + \\delta)$ over a grid of detunings $\\delta$ is driven by
the stimulus, and a detuning counts as locked when the relative phase
$l\\phi_z - u\\phi_x$ slips by less than half a cycle over the second half of the run (no
phase slip; the $u{:}l$ PLV is returned too, but a locked state driven hard also carries
non-resonant phase modulation, which lowers its PLV below 1 without any slip). The width
is the total relative detuning that locks (the measure of the locked set, so a small shift
of the tongue's centre does not change it).

Over an analysed span $T$ a slip slower than $1/(2T)$ cycles per second is not seen, so
widths below about $1/(T l f_z)$ sit on that floor.

**References:**

Large, E. W., Almonte, F. V. & Velasco, M. J. (2010). A canonical model for gradient
frequency neural networks. Physica D 239(12), 905-911.

Shapira Lots, I. & Stone, L. (2008). Perception of musical consonance and dissonance: an
outcome of neural synchronization. J. R. Soc. Interface 5(29), 1429-1434.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike

from .._signal import Signal
from .._simulate import simulate
from ..models.grfnn import GrFNN

Numbers = ArrayLike | Sequence[int | float]


def resonance_order(upper: Numbers, lower: Numbers) -> np.ndarray:
    """The order $u + l - 2$ of the resonant monomial for the ratio $u{:}l$ (in lowest terms)."""
    u, low = np.asarray(upper, dtype=np.int64), np.asarray(lower, dtype=np.int64)
    g = np.gcd(u, low)
    return u // g + low // g - 2


def resonance_strength(upper: Numbers, lower: Numbers, eps: float,
                       amplitude: float = 1.0) -> np.ndarray:
    """The coefficient $\\varepsilon^{(u+l-2)/2} F^{u}$ of the resonant $u{:}l$ monomial."""
    u, low = np.asarray(upper, dtype=np.int64), np.asarray(lower, dtype=np.int64)
    g = np.gcd(u, low)
    return eps ** ((u // g + low // g - 2) / 2) * amplitude ** (u // g)


def detuning_grid(max_detuning: float, n_side: int, min_detuning: float = 1e-5) -> np.ndarray:
    """Relative detunings: 0 and $\\pm$ `n_side` log-spaced values from `min_detuning` to
    `max_detuning` (fine near the resonance, where narrow tongues live)."""
    if not 0 < min_detuning < max_detuning:
        raise ValueError(f"Need 0 < min_detuning < max_detuning, got {min_detuning}, {max_detuning}.")
    side = np.geomspace(min_detuning, max_detuning, n_side)
    return np.concatenate([-side[::-1], [0.0], side])


def cell_widths(grid: np.ndarray) -> np.ndarray:
    """Each grid point's share of the axis: half the distance to each neighbour."""
    g = np.asarray(grid, dtype=np.float64)
    edges = np.concatenate([[g[0]], (g[1:] + g[:-1]) / 2, [g[-1]]])
    return np.diff(edges)


@jax.jit
def _accumulate(ys, ts, f_x, lower, upper):
    """Sums over one chunk: $e^{i(l\\phi_z - u\\phi_x)}$, and the advance of $\\phi_z$ (rad)."""
    phase_z = jnp.angle(ys[1:])
    phase_x = (2 * jnp.pi * f_x * ts[1:])[:, None]
    d = lower[None, :] * phase_z - upper[None, :] * phase_x
    plv_sum = jax.lax.complex(jnp.sum(jnp.cos(d), 0), jnp.sum(jnp.sin(d), 0))
    # Unwrapped advance of the oscillator's phase: the step increments are well below pi
    # (fs >> f_z), so summing the wrapped increments counts every cycle.
    advance = jnp.sum(jnp.angle(ys[1:] * jnp.conj(ys[:-1])), 0)
    return plv_sum, advance


def mode_locking(upper: Numbers, lower: Numbers, detuning: Numbers, *, stim_hz: float = 1.0,
                 amplitude: float = 0.3, alpha: float = 1.0, beta1: float = -1.0,
                 beta2: float = -1.0, eps: float = 1.0, duration: float = 200.0, fs: float = 64.0,
                 chunk: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """The $u{:}l$ PLV of oscillators at $(u/l) f_x (1+\\delta)$ driven by $F e^{i2\\pi f_x t}$.

    One GrFNN layer (`input="all2freq"`, log spacing) holds every (ratio, detuning) pair;
    it is integrated with RK4 in chunks of `chunk` seconds so memory stays small, and the
    PLV is accumulated over the second half of `duration`.

    **Arguments:**

    - `upper`, `lower`: integer ratios $u{:}l$, shape `(k,)`.
    - `detuning`: relative detunings $\\delta$, shape `(d,)`.
    - `stim_hz`, `amplitude`: stimulus frequency $f_x$ and amplitude $F$
        ($\\sqrt\\varepsilon F < 1$ is required by $P(x)$).
    - `alpha`, `beta1`, `beta2`, `eps`: the canonical parameters (self-sustained by default).
    - `duration`, `fs`: total time (s) and sampling rate / RK4 step (Hz).

    **Returns:** `(plv, slip)`, each shape `(k, d)`: the $u{:}l$ PLV over the second half,
    and the net slip of the relative phase $l\\phi_z - u\\phi_x$ over it, in cycles.

    **Raises:** `ValueError` if $\\sqrt\\varepsilon F \\ge 1$ or the integration diverges.
    """
    if not np.sqrt(eps) * amplitude < 1:
        raise ValueError(f"sqrt(eps) * amplitude = {np.sqrt(eps) * amplitude:.3g} must be < 1 "
                         "(P(x) is singular there); lower the amplitude or eps.")
    u = np.asarray(upper, dtype=np.float64)
    l_ = np.asarray(lower, dtype=np.float64)
    det = np.asarray(detuning, dtype=np.float64)
    freqs = (stim_hz * u / l_)[:, None] * (1 + det[None, :])
    net = GrFNN(freqs.reshape(-1), alpha=alpha, beta1=beta1, beta2=beta2, eps=eps, input="all2freq")
    n_steps_chunk = max(1, int(round(chunk * fs)))
    n_chunks = max(2, int(np.ceil(duration * fs / n_steps_chunk)))
    y = net.initial_state()
    low = jnp.asarray(np.repeat(l_, det.size))
    up = jnp.asarray(np.repeat(u, det.size))
    acc = jnp.zeros(freqs.size, dtype=y.dtype)
    advance = jnp.zeros(freqs.size, dtype=y.real.dtype)
    count = 0
    for c in range(n_chunks):
        ts = (c * n_steps_chunk + np.arange(n_steps_chunk + 1)) / fs
        xs = amplitude * np.exp(2j * np.pi * stim_hz * ts)
        traj = simulate(net, Signal(ts, xs), dt=1 / fs, y0=y)
        y = traj.ys[-1]
        if c >= n_chunks // 2:
            a, adv = _accumulate(traj.ys, traj.ts, stim_hz, low, up)
            acc, advance = acc + a, advance + adv
            count += n_steps_chunk
    plv = np.abs(np.asarray(acc)) / count
    # Net slip of the u:l relative phase over the analysed span, in cycles.
    slip = (np.asarray(low) * np.asarray(advance) - np.asarray(up) * 2 * np.pi * stim_hz * count / fs)
    return plv.reshape(freqs.shape), (slip / (2 * np.pi)).reshape(freqs.shape)


def locking_widths(slip: ArrayLike, detuning: Numbers, max_slip: float = 0.5) -> np.ndarray:
    """The total relative detuning that locks: $|$slip$| <$ `max_slip` cycles (per row)."""
    slip = np.asarray(slip)
    return ((np.abs(slip) < max_slip) * cell_widths(detuning)[None, :]).sum(-1)
