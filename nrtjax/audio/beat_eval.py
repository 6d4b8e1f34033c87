"""Beat-tracking scores, from mir_eval (Raffel et al. 2014), the field's reference code.

`score_beats` gives the usual set: beat F-measure (70 ms window; Dixon 2007), CMLt and
AMLt (continuity at the annotated and at allowed metrical levels; Hainsworth 2004, Klapuri
et al. 2006), Cemgil's accuracy (40 ms Gaussian; Cemgil et al. 2001), P-score (McKinney et
al. 2007), tempo Acc1 (within 4 % of the reference) and Acc2 (also at 2, 3, 1/2 or 1/3 of
it; Gouyon et al. 2006) and the downbeat F-measure (mir_eval's beat F-measure on the
downbeats). Beats in the first `skip` seconds of both sequences are left out, as
`mir_eval.beat.trim_beats` does (5 s by convention: a tracker's start-up).
"""

import warnings

import numpy as np
from jaxtyping import ArrayLike, Float

METRICS = ("f_measure", "cmlt", "amlt", "cemgil", "p_score", "tempo_acc1", "tempo_acc2",
           "downbeat_f")


def _check(name: str, beats) -> np.ndarray:
    b = np.asarray(beats, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{name} beat times contain NaN or inf.")
    if np.any(np.diff(b) < 0):
        raise ValueError(f"{name} beat times must be sorted in increasing order.")
    return b


def _trim(name: str, beats, skip: float, *, required: bool) -> np.ndarray:
    b = _check(name, beats)
    b = b[b >= skip]
    if required and b.size == 0:
        raise ValueError(f"No {name.lower()} beats after {skip:g} s: the score is undefined. "
                         "Score a longer excerpt, or lower skip.")
    return b


def f_measure(
    reference: Float[ArrayLike, " n"], estimate: Float[ArrayLike, " m"], *,
    window: float = 0.07, skip: float = 5.0,
) -> float:
    """Beat F-measure of `estimate` against `reference` (times in seconds, sorted):
    `mir_eval.beat.f_measure` after dropping the beats before `skip` from both.

    An estimate is a hit within `window` s of a reference beat, each reference beat
    matching at most one estimate; F is the harmonic mean of hits/estimates and
    hits/references.

    **Returns:** F in [0, 1]; 0 when there is no estimate after `skip`.

    **Raises:** `ValueError` for unsorted or non-finite times, or when no reference beat
    lies after `skip` (the score would be undefined).
    """
    import mir_eval

    ref = _trim("Reference", reference, skip, required=True)
    est = _trim("Estimated", estimate, skip, required=False)
    if est.size == 0:
        return 0.0
    return float(mir_eval.beat.f_measure(ref, est, f_measure_threshold=window))


def tempo_accuracy(reference_bpm: float, estimate_bpm: float, *,
                   tolerance: float = 0.04) -> tuple[float, float]:
    """Acc1 (estimate within `tolerance` of the reference tempo, relative) and Acc2 (or of
    2, 3, 1/2 or 1/3 times it), each 1.0 or 0.0.

    **Raises:** `ValueError` for a non-positive or non-finite reference tempo."""
    if not (np.isfinite(reference_bpm) and reference_bpm > 0):
        raise ValueError(f"Reference tempo {reference_bpm!r} BPM must be positive and finite.")
    if not (np.isfinite(estimate_bpm) and estimate_bpm > 0):
        return 0.0, 0.0
    ok = [abs(estimate_bpm - f * reference_bpm) <= tolerance * f * reference_bpm
          for f in (1.0, 2.0, 3.0, 1 / 2, 1 / 3)]
    return float(ok[0]), float(any(ok))


def beat_tempo(beats: Float[ArrayLike, " n"]) -> float:
    """Tempo in BPM from the median inter-beat interval (NaN for fewer than two beats)."""
    b = _check("Beat", beats)
    return float(60.0 / np.median(np.diff(b))) if b.size >= 2 else float("nan")


def score_beats(
    reference: Float[ArrayLike, " n"], estimate: Float[ArrayLike, " m"], *,
    reference_downbeats: Float[ArrayLike, " p"] | None = None,
    estimate_downbeats: Float[ArrayLike, " q"] | None = None,
    estimate_tempo: float | None = None, skip: float = 5.0,
) -> dict[str, float]:
    """Every score in `METRICS` of one estimate against one annotation.

    **Arguments:**

    - `reference`, `estimate`: beat times in seconds, increasing.
    - `reference_downbeats`, `estimate_downbeats`: downbeat times; `downbeat_f` is NaN
        unless both are given and the reference has a downbeat after `skip`.
    - `estimate_tempo`: the tracker's tempo in BPM; by default the median inter-beat
        interval of `estimate`. The reference tempo is always the median inter-beat
        interval of `reference` after `skip`.
    - `skip`: beats before this time are left out of every score (default 5 s).

    **Returns:** `{metric: value}`, each in [0, 1] (or NaN as said above).

    **Raises:** `ValueError` for unsorted or non-finite times, or fewer than two reference
    beats after `skip`.
    """
    import mir_eval

    ref = _trim("Reference", reference, skip, required=True)
    if ref.size < 2:
        raise ValueError(f"Only one reference beat after {skip:g} s: the continuity and "
                         "tempo scores are undefined. Score a longer excerpt.")
    est = _trim("Estimated", estimate, skip, required=False)
    out = dict.fromkeys(METRICS, 0.0)
    with warnings.catch_warnings():  # mir_eval warns about empty or short estimates
        warnings.simplefilter("ignore", UserWarning)
        if est.size:
            out["f_measure"] = float(mir_eval.beat.f_measure(ref, est))
            out["cemgil"] = float(mir_eval.beat.cemgil(ref, est)[0])
            out["p_score"] = float(mir_eval.beat.p_score(ref, est))
            _, cmlt, _, amlt = mir_eval.beat.continuity(ref, est)
            out["cmlt"], out["amlt"] = float(cmlt), float(amlt)
        tempo = estimate_tempo if estimate_tempo is not None else beat_tempo(
            _check("Estimated", estimate))
        out["tempo_acc1"], out["tempo_acc2"] = tempo_accuracy(beat_tempo(ref), float(tempo))
        out["downbeat_f"] = float("nan")
        if reference_downbeats is not None and estimate_downbeats is not None:
            rd = _trim("Reference downbeat", reference_downbeats, skip, required=False)
            ed = _trim("Estimated downbeat", estimate_downbeats, skip, required=False)
            if rd.size:
                out["downbeat_f"] = float(mir_eval.beat.f_measure(rd, ed)) if ed.size else 0.0
    return out


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
