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
