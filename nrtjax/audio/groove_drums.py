"""Drum events (kick, snare, hi-hat with velocities) that play along with the beats.

The groove pattern is the onset strength at the 16 sixteenth-note positions of a 4/4
bar, averaged over bars (positions interpolated between consecutive beats, so the grid
follows tempo changes). The downbeat is the beat position (of 4) with the strongest
mean onset. Kick on 1 and 3 and snare on 2 and 4 (the backbeat), hi-hat on the eighths;
extra kicks and hats where the song's own pattern is strong (its syncopations). Each
event's velocity combines the pattern with the local onset strength.
"""

from typing import NamedTuple

import numpy as np

KICK, SNARE, HAT = 0, 1, 2
INSTRUMENTS = ("kick", "snare", "hat")
STEPS = 16  # sixteenth notes in a 4/4 bar


class DrumEvents(NamedTuple):
    """Drum hits sorted by time: `times` (s), `instrument` (0 kick, 1 snare, 2 hat),
    `velocity` in [0, 1], `step` (0-15, the sixteenth in the bar); `pattern` (16,) the
    song's normalised groove pattern, and `downbeat` (index of the first downbeat)."""

    times: np.ndarray
    instrument: np.ndarray
    velocity: np.ndarray
    step: np.ndarray
    pattern: np.ndarray
    downbeat: int


def grid_times(beats: np.ndarray, per_beat: int = 4) -> np.ndarray:
    """Subdivision times between consecutive beats (the last beat included)."""
    beats = np.asarray(beats, np.float64)
    frac = np.arange(per_beat) / per_beat
    inner = (beats[:-1, None] + np.diff(beats)[:, None] * frac[None, :]).reshape(-1)
    return np.concatenate([inner, beats[-1:]])


def _strength(envelope: np.ndarray, fs: float, times: np.ndarray) -> np.ndarray:
    """Onset strength near each time (max over +-20 ms), normalised by the 95th percentile."""
    env = np.asarray(envelope, np.float64)
    scale = np.percentile(env, 95) + 1e-12
    half = max(1, int(round(0.02 * fs)))
    idx = np.clip(np.round(times * fs).astype(int), 0, env.size - 1)
    offs = np.arange(-half, half + 1)
    win = env[np.clip(idx[:, None] + offs[None, :], 0, env.size - 1)]
    return np.clip(win.max(axis=1) / scale, 0.0, 1.0)


def groove_pattern(beats: np.ndarray, envelope: np.ndarray, fs: float) -> tuple[np.ndarray, int]:
    """`(pattern, downbeat)`: mean strength on the 16-step bar grid, and the downbeat index."""
    beat_strength = _strength(envelope, fs, beats)
    downbeat = int(np.argmax([beat_strength[k::4].mean() if beat_strength[k::4].size else -1
                              for k in range(min(4, beats.size))]))
    grid = grid_times(beats[downbeat:])
    s = _strength(envelope, fs, grid)
    bars = s.size // STEPS
    if bars == 0:
        pattern = np.zeros(STEPS)
        pattern[: s.size] = s
    else:
        pattern = s[: bars * STEPS].reshape(bars, STEPS).mean(axis=0)
    return pattern / (pattern.max() + 1e-12), downbeat


def drum_events(beats: np.ndarray, envelope: np.ndarray, fs: float, *,
                duration: float) -> DrumEvents:
    """Kick, snare and hat hits for the beats (see module docstring).

    **Arguments:**

    - `beats`: beat times in seconds (at least 2), increasing.
    - `envelope`, `fs`: the onset envelope and its frame rate.
    - `duration`: the recording's length; no event is placed after it.
    """
    beats = np.asarray(beats, np.float64)
    if beats.size < 2:
        raise ValueError("Drum events need at least two beats.")
    pattern, downbeat = groove_pattern(beats, envelope, fs)
    grid = grid_times(beats)
    steps = (np.arange(grid.size) - 4 * downbeat) % STEPS
    local = _strength(envelope, fs, grid)
    base = pattern[steps]
    rows = []
    kick = np.isin(steps, (0, 8)) | (np.isin(steps, (6, 10, 14)) & (base > 0.7))
    snare = np.isin(steps, (4, 12))
    hat = (steps % 2 == 0) | (base > 0.6)
    for inst, mask, floor in ((KICK, kick, 0.55), (SNARE, snare, 0.5), (HAT, hat, 0.25)):
        idx = np.flatnonzero(mask & (grid <= duration))
        vel = floor + (1 - floor) * 0.5 * (base[idx] + local[idx])
        if inst == HAT:
            vel = vel * np.where(steps[idx] % 4 == 0, 1.0, 0.75)  # accent the beats
        rows.append((grid[idx], np.full(idx.size, inst), np.clip(vel, 0, 1), steps[idx]))
    times = np.concatenate([r[0] for r in rows])
    order = np.lexsort((np.concatenate([r[1] for r in rows]), times))
    return DrumEvents(times[order], np.concatenate([r[1] for r in rows])[order].astype(int),
                      np.concatenate([r[2] for r in rows])[order],
                      np.concatenate([r[3] for r in rows])[order].astype(int), pattern, downbeat)
