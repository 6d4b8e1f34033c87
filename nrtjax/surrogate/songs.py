"""Synthetic drum songs: patterns on a sixteenth-note grid with tempo drift, timing
jitter, dropped and extra onsets and varying dynamics."""

import dataclasses

import numpy as np
from jaxtyping import PRNGKeyArray

from .._random import as_generator

# One bar of 16 sixteenth-note steps: (step, velocity). Kick and snare carry the beat
# with similar weight (so the half-bar component of the onset envelope stays small),
# hats and ghost notes are soft.
_HAT8 = [(s, 0.3) for s in range(0, 16, 2)]
TRAIN_PATTERNS: dict[str, list[tuple[int, float]]] = {
    "rock": [(0, 1.0), (4, 0.95), (8, 1.0), (12, 0.95), *_HAT8],
    "four_on_floor": [(0, 1.0), (4, 1.0), (8, 1.0), (12, 1.0), (2, 0.35), (6, 0.35),
                      (10, 0.35), (14, 0.35)],
    "backbeat_16": [(0, 1.0), (4, 0.9), (8, 0.95), (12, 0.9),
                    *[(s, 0.2) for s in range(16) if s % 4]],
    "shuffle_kick": [(0, 1.0), (4, 0.95), (8, 1.0), (11, 0.4), (12, 0.95), *_HAT8],
    "sparse": [(0, 1.0), (4, 0.9), (8, 0.95), (12, 0.9)],
    "ghosted": [(0, 1.0), (4, 0.95), (7, 0.25), (8, 1.0), (12, 0.95), (15, 0.25), *_HAT8],
}
"""Training drum patterns: name -> [(sixteenth step, velocity), ...] over one bar."""
# Never used in training.
HELDOUT_PATTERNS: dict[str, list[tuple[int, float]]] = {
    "funk": [(0, 1.0), (3, 0.45), (4, 0.9), (8, 0.9), (10, 0.4), (12, 0.95),
             *[(s, 0.2) for s in range(1, 16, 2)]],
    "bossa": [(0, 1.0), (4, 0.85), (6, 0.4), (8, 0.95), (12, 0.85), (13, 0.35),
              *_HAT8],
}
"""Held-out drum patterns (never used in training), in the format of `TRAIN_PATTERNS`."""


@dataclasses.dataclass(frozen=True)
class SongStyle:
    """The random variation applied to a pattern.

    **Fields:**

    - `drift`: maximal relative tempo change over the song (linear ramp), e.g. 0.08.
    - `jitter`: standard deviation of onset timing noise in seconds.
    - `drop`: probability that an onset is dropped.
    - `extra_rate`: extra (off-grid, soft) onsets per second.
    - `dynamics`: depth of the slow loudness modulation, in [0, 1).
    """

    drift: float = 0.08
    jitter: float = 0.008
    drop: float = 0.05
    extra_rate: float = 0.15
    dynamics: float = 0.3

    def __post_init__(self):
        for name in ("drift", "jitter", "drop", "extra_rate", "dynamics"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"SongStyle.{name} must be >= 0, got {getattr(self, name)!r}.")
        if self.drop >= 1 or self.dynamics >= 1:
            raise ValueError("SongStyle.drop and SongStyle.dynamics must be below 1.")


def make_song(
    pattern: list[tuple[int, float]],
    tempo_bpm: float,
    duration: float,
    *,
    key: PRNGKeyArray,
    style: SongStyle = SongStyle(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic drum song.

    The tempo ramps linearly from `tempo_bpm` to `tempo_bpm (1 + u)` with
    $u \\sim U(-\\text{drift}, \\text{drift})$; the pattern repeats every bar of 16
    sixteenth notes; each onset is jittered, dropped with probability `drop`, and scaled
    by a slow random loudness curve; soft extra onsets fall at random times.

    **Arguments:**

    - `pattern`: one bar, `(step, velocity)` pairs with `0 <= step < 16`.
    - `tempo_bpm`: the starting tempo in beats (quarter notes) per minute.
    - `duration`: length in seconds.
    - `key`: a JAX PRNG key (the song is a deterministic function of it).
    - `style`: the variation, a [`SongStyle`][].

    **Returns:**

    `(onsets, velocities, beats)`: onset times in seconds (sorted), velocities in
    $[0, 1]$, and the times of the (undisturbed) beats.
    """
    if not (tempo_bpm > 0 and duration > 0):
        raise ValueError(f"tempo_bpm and duration must be positive, got {tempo_bpm}, {duration}.")
    rng = as_generator(key, what="A song")
    ramp = rng.uniform(-style.drift, style.drift)
    steps, vels = np.array([s for s, _ in pattern]), np.array([v for _, v in pattern])
    # Grid times of sixteenth notes under the ramped tempo.
    grid, t, k = [], 0.0, 0
    while t < duration:
        grid.append(t)
        t += 15.0 / (tempo_bpm * (1 + ramp * t / duration))
        k += 1
    grid = np.asarray(grid)
    idx = np.arange(grid.size)
    hit = np.isin(idx % 16, steps)
    pos = idx[hit]
    onsets = grid[pos] + rng.normal(0.0, style.jitter, pos.size)
    base = np.array([vels[steps == p % 16].max() for p in pos]) if pos.size else np.zeros(0)
    phase0, period = rng.uniform(0, 2 * np.pi), rng.uniform(4.0, 12.0)
    loud = 1 - style.dynamics * 0.5 * (1 + np.sin(2 * np.pi * onsets / period + phase0))
    v = base * loud * rng.uniform(0.85, 1.0, pos.size)
    keep = rng.random(pos.size) >= style.drop
    onsets, v = onsets[keep], v[keep]
    n_extra = rng.poisson(style.extra_rate * duration)
    onsets = np.concatenate([onsets, rng.uniform(0, duration, n_extra)])
    v = np.concatenate([v, rng.uniform(0.1, 0.35, n_extra)])
    order = np.argsort(onsets)
    onsets, v = onsets[order], np.clip(v[order], 0.0, 1.0)
    inside = (onsets >= 0) & (onsets < duration)
    return onsets[inside], v[inside], grid[idx % 4 == 0]
