"""The documented mapping from normalised biomarkers to duet parameters: the values of the
four [`nrtjax.audio.DuetParams`][] fields the EEG steers, as a dict
(`params.replace(**values)` applies one block's).

Each normalised biomarker $x$ (1 = the subject's baseline) becomes a bounded score
$u = \\mathrm{clip}(\\log_2(x) / 2, -1, 1)$: $u = 0$ at baseline, $\\pm 1$ at 4x or 1/4 of it.

| parameter | model | formula | range | direction |
|---|---|---|---|---|
| `tempo_bpm` | ASHLE drummer's spontaneous rate $60 f_0$ | $120 \\cdot 2^{0.3 u_E}$ | 97.5-147.7 | engagement speeds the beat up |
| `lambda1` | ASHLE frequency learning | $4 \\cdot 2^{u_A}$ | 2-8 | attention tightens entrainment |
| `lambda2` | ASHLE elasticity | $2 \\cdot 4^{-u_R}$ | 0.5-8 | relaxation lowers it (loose, adaptive timing); tension raises it (rigid) |
| `rho` | Lorenz melodist | $25 + 9 u_S$ | 16-34 | stress raises it (chaotic above 24.74); calm lowers it (the melody settles) |

with E engagement, A attention, S stress, R relaxation. At baseline: 120 BPM
($f_0$ = 2 Hz), lambda1 = 4, lambda2 = 2 (the ASHLE reference values of Roman et al. 2023)
and rho = 25 (just chaotic).

Expected directions on the Epoc X twin (tested): stressed raises rho above 24.74 (the
highest rho of the five states) and lambda2 above 2; relaxed_awake and meditative lower
lambda2 below 2 and rho below 24.74; focused raises lambda1 and the tempo; drowsy lowers
lambda1 and the tempo.
"""

from typing import NamedTuple

import numpy as np

from .biomarkers import BIOMARKERS

PARAMETERS = ("tempo_bpm", "lambda1", "lambda2", "rho")
BASE = {"tempo_bpm": 120.0, "lambda1": 4.0, "lambda2": 2.0, "rho": 25.0}
RANGES = {"tempo_bpm": (120.0 * 2**-0.3, 120.0 * 2**0.3), "lambda1": (2.0, 8.0),
          "lambda2": (0.5, 8.0), "rho": (16.0, 34.0)}
LORENZ_CRITICAL_RHO = 24.74


def scores(normalised: np.ndarray) -> np.ndarray:
    """Bounded scores $u = \\mathrm{clip}(\\log_2(x)/2, -1, 1)$ of normalised biomarkers
    `(..., 4)`; non-positive or non-finite inputs count as baseline (u = 0)."""
    x = np.asarray(normalised, dtype=np.float64)
    ok = np.isfinite(x) & (x > 0)
    return np.where(ok, np.clip(np.log2(np.where(ok, x, 1.0)) / 2, -1.0, 1.0), 0.0)


def map_scores(u: np.ndarray) -> dict[str, np.ndarray | float]:
    """Duet parameters from scores `u (..., 4)` (engagement, relaxation, stress, attention),
    by the table in this module's docstring: `{name: array (...)}` for the names in
    `PARAMETERS` (fields of [`nrtjax.audio.DuetParams`][])."""
    u = np.asarray(u, dtype=np.float64)
    e, r, s, a = (u[..., BIOMARKERS.index(k)] for k in BIOMARKERS)
    tempo = BASE["tempo_bpm"] * 2 ** (0.3 * e)
    lambda1 = BASE["lambda1"] * 2**a
    lambda2 = BASE["lambda2"] * 4.0 ** (-r)
    rho = BASE["rho"] + 9.0 * s
    return dict(zip(PARAMETERS, (tempo, lambda1, lambda2, rho)))


def map_biomarkers(normalised: np.ndarray) -> dict[str, np.ndarray | float]:
    """Duet parameters from normalised biomarkers `(..., 4)` (1 = baseline), as
    `map_scores` returns them."""
    return map_scores(scores(normalised))


class Smoother(NamedTuple):
    """An exponential moving average of the scores with time constant `tau_s`, so that
    parameters glide between blocks instead of jumping (`tau_s = 0`: no smoothing)."""

    tau_s: float
    state: np.ndarray | None = None

    def update(self, u: np.ndarray, dt: float) -> "Smoother":
        if self.state is None or self.tau_s <= 0:
            return self._replace(state=np.asarray(u, np.float64))
        w = 1.0 - np.exp(-dt / self.tau_s)
        return self._replace(state=self.state + w * (np.asarray(u) - self.state))
