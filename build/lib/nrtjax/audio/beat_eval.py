"""The standard beat-tracking F-measure (MIREX; Dixon 2007; mir_eval.beat.f_measure).

Beats in the first `skip` seconds of both sequences are ignored (the trackers' start-up,
5 s by convention). An estimated beat is a hit when it lies within `window` seconds of a
reference beat, each reference beat matching at most one estimate. Precision is hits /
estimates, recall hits / references, F their harmonic mean.
"""

import numpy as np
from jaxtyping import ArrayLike, Float


def _check(name: str, beats) -> np.ndarray:
    b = np.asarray(beats, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name} beat times contain NaN or inf.")
    if np.any(np.diff(b) < 0):
        raise ValueError(f"{name} beat times must be sorted in increasing order.")
    return b


def beat_hits(reference: np.ndarray, estimate: np.ndarray, window: float) -> int:
    """The largest number of one-to-one matches with |reference - estimate| <= window.

    Each reference beat is compatible with a contiguous, monotonically moving range of
    sorted estimates, so matching greedily from the left is optimal (two pointers).
    """
    i = j = hits = 0
    tol = window + 1e-9
    while i < reference.size and j < estimate.size:
        d = estimate[j] - reference[i]
        if abs(d) <= tol:
            hits += 1
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return hits


def f_measure(
    reference: Float[ArrayLike, " n"], estimate: Float[ArrayLike, " m"], *,
    window: float = 0.07, skip: float = 5.0,
) -> float:
    """Beat F-measure of `estimate` against `reference` (times in seconds, sorted).

    **Arguments:**

    - `reference`, `estimate`: beat times in seconds, increasing.
    - `window`: tolerance in seconds on either side (default 70 ms).
    - `skip`: beats before this time are discarded from both (default 5 s).

    **Returns:** F in [0, 1]; 0 when there is no estimate after `skip`.

    **Raises:** `ValueError` for unsorted or non-finite times, or when no reference beat
    lies after `skip` (the score would be undefined).
    """
    ref = _check("Reference", reference)
    est = _check("Estimated", estimate)
    ref = ref[ref >= skip]
    est = est[est >= skip]
    if ref.size == 0:
        raise ValueError(f"No reference beats after {skip:g} s: the F-measure is undefined.")
    if est.size == 0:
        return 0.0
    hits = beat_hits(ref, est, window)
    if hits == 0:
        return 0.0
    precision = hits / est.size
    recall = hits / ref.size
    return 2 * precision * recall / (precision + recall)


def grid_delay(
    onsets: Float[ArrayLike, " n"], beats: Float[ArrayLike, " m"], *,
    subdivisions: int = 4, tolerance: float = 0.01, step: float = 0.001,
) -> tuple[float, float, float]:
    """The constant delay of a MIDI file's notes relative to its own beat grid.

    Reference beats taken from a MIDI tempo map assume that the notes sit on that grid.
    Some files have every note displaced by a constant (a lead-in written by the
    converting sequencer, for example); the grid is then not where the music's beats
    are. This finds the shift $\\delta$ of the grid subdivided into `subdivisions` per beat
    (sixteenths by default), in steps of `step` seconds over
    $[-P / (2 s), P / (2 s))$ ($P$ the median beat period, $s$ = `subdivisions`), that
    puts the most note onsets within `tolerance` seconds of a grid line (the smallest
    $|\\delta|$ among ties), refined by the median residual of the onsets it captures.

    **Arguments:**

    - `onsets`: note-on times in seconds (any order); `beats`: the grid's beat times,
        increasing, at least two.

    **Returns:** `(delay, on_grid_at_delay, on_grid_at_zero)`: the delay in seconds and
    the fractions of onsets (within the beats' span) on the grid shifted by it and on the
    unshifted grid.

    **Raises:** `ValueError` for fewer than two beats or no onset within their span.
    """
    b = _check("Grid", beats)
    if b.size < 2:
        raise ValueError("At least two beats are needed to define a grid.")
    on = np.asarray(onsets, np.float64).reshape(-1)
    on = on[(on >= b[0]) & (on < b[-1])]
    if on.size == 0:
        raise ValueError("No note onset lies within the span of the beats.")
    grid = (b[:-1, None] + np.diff(b)[:, None] * np.arange(subdivisions) / subdivisions).ravel()
    half = np.median(np.diff(b)) / (2 * subdivisions)
    shifts = np.arange(-np.floor(half / step), np.ceil(half / step)) * step
    shifts = shifts[(shifts >= -half) & (shifts < half)]

    def residuals(shift: float) -> np.ndarray:
        """Each onset minus its nearest line of the grid shifted by `shift`."""
        g = grid + shift
        j = np.searchsorted(g, on).clip(1, g.size - 1)
        return on - np.where(np.abs(on - g[j]) < np.abs(on - g[j - 1]), g[j], g[j - 1])

    def fraction(shift: float) -> float:
        return float(np.mean(np.abs(residuals(shift)) <= tolerance + 1e-12))

    fr = np.array([fraction(s) for s in shifts])
    best = np.flatnonzero(fr == fr.max())
    shift = shifts[best[np.argmin(np.abs(shifts[best]))]]
    # Refine: a tolerance-wide plateau of shifts ties; take the median residual instead.
    res = residuals(shift)
    shift = shift + float(np.median(res[np.abs(res) <= tolerance + 1e-12]))
    return float(shift), fraction(shift), fraction(0.0)
