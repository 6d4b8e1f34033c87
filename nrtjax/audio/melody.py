"""The Lorenz melodist's mapping: a Lorenz state $(x, y, z)$ becomes a note.

The Lorenz system is advanced on the drummer's beat clock (see `nrtjax.audio.duet`); at
each subdivision of the beat where the previous note has ended, its state is read:

- $x$ (the lobe the trajectory is on, and how far out) picks a **scale degree**: $x$ in
  $[-x_r, x_r]$ covers `span_octaves` octaves of the scale, centred on `root` (+ 12 x
  `octave`), rounded to the nearest degree;
- $y$ sets the **velocity**: $0.55 + 0.4\\,y/y_r$, clipped to $[0.15, 1]$;
- $z$ sets the **note length** in subdivisions: $z/z_r$ in $[0, 1]$ split into
  `len(lengths)` equal bins, mapped to `lengths` (default 1, 2, 3, 4 eighth notes).

With $\\sigma = 10$, $\\beta = 8/3$ and $\\rho < 24.74$ the Lorenz system settles on a fixed
point $C_\\pm = (\\pm\\sqrt{\\beta(\\rho-1)}, \\pm\\sqrt{\\beta(\\rho-1)}, \\rho-1)$, so the melody
settles on one repeated note of fixed velocity and length ("calm"); near $\\rho = 28$ it is
chaotic and the melody wanders over the scale ("stressed"). All functions here are
host-side NumPy and vectorised.

**References:** Lorenz, E. N. (1963). Deterministic nonperiodic flow. J. Atmos. Sci. 20,
130-141. (The stability threshold
$\\rho_H = \\sigma(\\sigma+\\beta+3)/(\\sigma-\\beta-1) \\approx 24.74$.)
"""

from typing import NamedTuple

import numpy as np

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "whole_tone": (0, 2, 4, 6, 8, 10),
    "chromatic": tuple(range(12)),
}
"""Scale name -> semitone offsets from the root within one octave."""


def hopf_rho(sigma: float = 10.0, beta: float = 8.0 / 3.0) -> float:
    """The subcritical Hopf threshold of the Lorenz fixed points $C_\\pm$,
    $\\sigma(\\sigma + \\beta + 3)/(\\sigma - \\beta - 1)$ (24.74 for the classical values)."""
    return sigma * (sigma + beta + 3.0) / (sigma - beta - 1.0)


class MelodyMapping(NamedTuple):
    """How Lorenz states become notes (see the module docstring).

    **Fields:**

    - `scale`: a key of `SCALES` (default `"major"`).
    - `root`: MIDI note at $x = 0$ before the octave shift (default 60, C4).
    - `octave`: register shift in octaves (default 0).
    - `span_octaves`: octaves covered by $x \\in [-x_r, x_r]$ (default 2).
    - `x_range`, `y_range`, `z_range`: $x_r = 20$, $y_r = 25$, $z_r = 50$, the extent of the
        classical attractor.
    - `lengths`: note lengths in subdivisions for the $z$ bins (default `(1, 2, 3, 4)`).
    """

    scale: str = "major"
    root: int = 60
    octave: int = 0
    span_octaves: int = 2
    x_range: float = 20.0
    y_range: float = 25.0
    z_range: float = 50.0
    lengths: tuple[int, ...] = (1, 2, 3, 4)

    def check(self) -> "MelodyMapping":
        """Return `self`, or raise `ValueError` naming the bad field and the allowed values."""
        if self.scale not in SCALES:
            raise ValueError(f"scale={self.scale!r} is unknown; choose one of {sorted(SCALES)}.")
        if not 0 <= self.root + 12 * self.octave - 6 * self.span_octaves:
            raise ValueError(f"root={self.root}, octave={self.octave} puts notes below MIDI 0.")
        if not self.root + 12 * self.octave + 6 * self.span_octaves <= 120:
            raise ValueError(f"root={self.root}, octave={self.octave} puts notes above MIDI 120.")
        if self.span_octaves < 1 or min(self.x_range, self.y_range, self.z_range) <= 0:
            raise ValueError("span_octaves must be >= 1 and the x/y/z ranges positive.")
        if len(self.lengths) == 0 or min(self.lengths) < 1:
            raise ValueError(f"lengths must be positive subdivision counts, got {self.lengths}.")
        return self


def degree_of(x, mapping: MelodyMapping = MelodyMapping()):
    """The scale degree (0 = lowest) for Lorenz $x$: `span_octaves * len(scale) + 1` degrees."""
    n = mapping.span_octaves * len(SCALES[mapping.scale]) + 1
    u = (np.clip(np.asarray(x, dtype=np.float64) / mapping.x_range, -1.0, 1.0) + 1.0) / 2.0
    return np.rint(u * (n - 1)).astype(np.int64)


def degree_to_midi(degree, mapping: MelodyMapping = MelodyMapping()):
    """MIDI pitch of a degree from `degree_of`; for an even `span_octaves` the middle degree
    ($x = 0$) is `root + 12 * octave`."""
    steps = SCALES[mapping.scale]
    k = np.asarray(degree, dtype=np.int64)
    low = mapping.root + 12 * mapping.octave - 12 * (mapping.span_octaves // 2)
    return low + 12 * (k // len(steps)) + np.asarray(steps)[k % len(steps)]


def velocity_of(y, mapping: MelodyMapping = MelodyMapping()):
    """Velocity in $[0.15, 1]$ from Lorenz $y$."""
    return np.clip(0.55 + 0.4 * np.asarray(y, dtype=np.float64) / mapping.y_range, 0.15, 1.0)


def length_of(z, mapping: MelodyMapping = MelodyMapping()):
    """Note length in subdivisions from Lorenz $z$ (one of `mapping.lengths`)."""
    u = np.clip(np.asarray(z, dtype=np.float64) / mapping.z_range, 0.0, 1.0)
    k = np.minimum((u * len(mapping.lengths)).astype(np.int64), len(mapping.lengths) - 1)
    return np.asarray(mapping.lengths, dtype=np.int64)[k]


def lorenz_to_note(xyz, mapping: MelodyMapping = MelodyMapping()) -> tuple:
    """Map Lorenz states to `(pitch, velocity, length_subdivisions)`.

    **Arguments:**

    - `xyz`: array of shape `(..., 3)`.
    - `mapping`: a `MelodyMapping`.

    **Returns:** three arrays of shape `(...)`: MIDI pitch (int), velocity (float) and
    length in subdivisions (int).
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.shape[-1:] != (3,):
        raise ValueError(f"Lorenz states must have a trailing axis of 3, got shape {xyz.shape}.")
    mapping.check()
    pitch = degree_to_midi(degree_of(xyz[..., 0], mapping), mapping)
    return pitch, velocity_of(xyz[..., 1], mapping), length_of(xyz[..., 2], mapping)
