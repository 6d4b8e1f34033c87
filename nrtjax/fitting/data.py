"""Readers for subject tapping data in CSV, with errors that name the row and column.

Two formats (one row per observation, a header row naming the columns, any order,
extra columns ignored):

- taps: `subject, trial, smt_ms, period_ms, tap_s`. One row per tap; `tap_s` is the
  tap time in seconds from the metronome's first beat (phase 0 at t = 0); `period_ms`
  is the metronome period, empty for an unpaced (continuation) trial; `smt_ms` is the
  subject's spontaneous motor tempo. Taps of a trial are listed in time order.
- summary: `subject, smt_ms, period_ratio, asynchrony_ms`. One row per condition:
  mean asynchrony (tap minus beat, ms) at period `period_ratio * smt_ms`, relative to
  the period = SMT condition (Scheurich et al. 2018).
"""

import csv
import math
import os
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .._dtypes import default_float
from .losses import SummaryData, TapData

TAP_COLUMNS = ("subject", "trial", "smt_ms", "period_ms", "tap_s")
# Plausible human tapping: inter-tap intervals and tempi between 100 ms and 3 s
# (Repp 2005, Sensorimotor synchronization: a review, Psychon. Bull. Rev. 12, 969-992).
INTERVAL_MS = (100.0, 3000.0)
MIN_TAPS = 4
SUMMARY_COLUMNS = ("subject", "smt_ms", "period_ratio", "asynchrony_ms")


class CSVFormatError(ValueError):
    """A malformed data file; the message names the file, line and column."""


class TapCohort(NamedTuple):
    subjects: list[str]
    trials: list[list[str]]
    data: TapData


class SummaryCohort(NamedTuple):
    subjects: list[str]
    data: SummaryData


def _rows(path: str | os.PathLike, columns: tuple[str, ...]) -> list[tuple[int, dict]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Data file {path} does not exist.")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if not header:
            raise CSVFormatError(f"{path} is empty; expected a header row {', '.join(columns)}.")
        missing = [c for c in columns if c not in header]
        if missing:
            raise CSVFormatError(
                f"{path}, line 1 (header): missing column(s) {', '.join(missing)}; the header "
                f"must name {', '.join(columns)} (found {', '.join(header)}).")
        reader.fieldnames = header
        rows = []
        for row in reader:
            line = reader.line_num
            if None in row:
                raise CSVFormatError(f"{path}, line {line}: more cells than header columns.")
            rows.append((line, {c: (row[c] or "").strip() for c in columns}))
    if not rows:
        raise CSVFormatError(f"{path} has a header but no data rows.")
    return rows


def _number(path, line: int, column: str, text: str, *, positive: bool = False,
            empty_ok: bool = False) -> float:
    if text == "":
        if empty_ok:
            return math.nan
        raise CSVFormatError(f"{path}, line {line}, column {column}: empty value; a number is "
                             "required.")
    try:
        value = float(text)
    except ValueError:
        raise CSVFormatError(f"{path}, line {line}, column {column}: {text!r} is not a "
                             "number.") from None
    if not math.isfinite(value):
        raise CSVFormatError(f"{path}, line {line}, column {column}: {text!r} is not a finite "
                             "number (NaN/inf); remove the row or fill in the value.")
    if positive and value <= 0:
        raise CSVFormatError(f"{path}, line {line}, column {column}: {value} must be positive.")
    return value


def _label(path, line: int, column: str, text: str) -> str:
    if text == "":
        raise CSVFormatError(f"{path}, line {line}, column {column}: empty value.")
    return text


def _same(path, line, column, seen: dict, key, value, first_line: dict):
    if key in seen and not math.isclose(seen[key], value, rel_tol=1e-9) and not (
            math.isnan(seen[key]) and math.isnan(value)):
        raise CSVFormatError(
            f"{path}, line {line}, column {column}: {value} differs from {seen[key]} on line "
            f"{first_line[key]} for the same {key if isinstance(key, str) else key[0]}; it "
            "must be constant within it.")
    seen.setdefault(key, value)
    first_line.setdefault(key, line)


def _check_counts(path, counts: dict, lines: dict):
    for subject, n in counts.items():
        if n < 2:
            raise CSVFormatError(
                f"{path}, line {lines[subject]}, column subject: subject {subject!r} has only "
                "one row; a fit needs at least two observations per subject.")


def _unit(path, line: int, column: str, value: float, what: str):
    lo, hi = INTERVAL_MS
    if math.isfinite(value) and not lo <= value <= hi:
        hint = (f"it looks like seconds: write {value * 1e3:g} (milliseconds)" if value < lo
                else "is it in microseconds or a typo?")
        raise CSVFormatError(f"{path}, line {line}, column {column}: {what} {value:g} ms is "
                             f"outside {lo:g}-{hi:g} ms; {hint}.")


def _check_trial(path, subject: str, trial: str, taps: list[tuple[float, int]],
                 period_ms: float, smt_ms: float):
    """Plausibility of one trial's taps, before any compute: enough taps, a median
    inter-tap interval (ITI) of human tapping, and 1:1 with the metronome (or the SMT)."""
    first, last = taps[0][1], taps[-1][1]
    where = f"{path}, lines {first}-{last} (subject {subject!r}, trial {trial!r})"
    if len(taps) < MIN_TAPS:
        raise CSVFormatError(
            f"{where}: only {len(taps)} tap(s); a trial needs at least {MIN_TAPS}. Drop the "
            "trial or add its taps.")
    iti = 1e3 * float(np.median(np.diff([t for t, _ in taps])))
    lo, hi = INTERVAL_MS
    if iti > hi:
        fix = ("tap_s looks like milliseconds: divide by 1000" if iti > 1e3 * hi / 10
               else "check that tap_s is in seconds")
        raise CSVFormatError(f"{where}, column tap_s: median inter-tap interval {iti:.6g} ms is "
                             f"outside human tapping ({lo:g}-{hi:g} ms); {fix}.")
    if iti < lo:
        raise CSVFormatError(f"{where}, column tap_s: median inter-tap interval {iti:.6g} ms is "
                             f"outside human tapping ({lo:g}-{hi:g} ms); tap_s must be in "
                             "seconds (minutes or samples?), one row per tap.")
    paced = math.isfinite(period_ms)
    ref, name = (period_ms, f"period_ms {period_ms:g}") if paced else (smt_ms, f"smt_ms {smt_ms:g} "
                                                                          "(unpaced trial)")
    ratio = iti / ref
    if ratio >= 2.0 or ratio <= 0.5:
        raise CSVFormatError(
            f"{where}: the median inter-tap interval {iti:.6g} ms disagrees with {name} by a "
            f"factor {max(ratio, 1 / ratio):.3g} (>= 2); the model taps once per "
            f"{'beat' if paced else 'SMT cycle'}: check the {'period' if paced else 'SMT'} "
            "and that every tap is listed once.")


def read_taps(path: str | os.PathLike) -> TapCohort:
    """Read a taps CSV (see the module docstring) into a padded [`TapData`][] cohort.

    Everything is checked before a number is returned: a missing column, a
    non-numeric/empty/NaN value, a non-positive SMT or period, an SMT or period outside
    100-3000 ms (e.g. in seconds), an SMT or period that changes within a subject or
    trial, a negative tap time, taps out of order, a trial with fewer than 4 taps, a
    median inter-tap interval outside 100-3000 ms (e.g. taps in milliseconds), or one
    that disagrees with the trial's period (with the SMT if unpaced) by a factor of 2 or
    more.

    **Raises:** `CSVFormatError` (a `ValueError`) naming the file, the line(s) and the
    column, and the likely fix.
    """
    smt, period, taps, order, counts, lines = {}, {}, {}, [], {}, {}
    first = {}
    for line, row in _rows(path, TAP_COLUMNS):
        s = _label(path, line, "subject", row["subject"])
        tr = _label(path, line, "trial", row["trial"])
        smt_v = _number(path, line, "smt_ms", row["smt_ms"], positive=True)
        _unit(path, line, "smt_ms", smt_v, "SMT")
        _same(path, line, "smt_ms", smt, s, smt_v, first)
        p = _number(path, line, "period_ms", row["period_ms"], positive=True, empty_ok=True)
        _unit(path, line, "period_ms", p, "period")
        _same(path, line, "period_ms", period, (s, tr), p, first)
        t = _number(path, line, "tap_s", row["tap_s"])
        if t < 0:
            raise CSVFormatError(
                f"{path}, line {line}, column tap_s: {t:g} is negative; tap times are seconds "
                "from the trial's first metronome beat (t = 0): subtract the time of that "
                "beat, not add it, and drop taps before it.")
        trial_taps = taps.setdefault((s, tr), [])
        if trial_taps and t <= trial_taps[-1][0]:
            raise CSVFormatError(
                f"{path}, line {line}, column tap_s: {t} is not after the previous tap "
                f"{trial_taps[-1][0]} (line {trial_taps[-1][1]}) of subject {s!r}, trial "
                f"{tr!r}; list each trial's taps in time order without duplicates.")
        trial_taps.append((t, line))
        if s not in counts:
            order.append(s)
        counts[s] = counts.get(s, 0) + 1
        lines.setdefault(s, line)
    _check_counts(path, counts, lines)
    for (s, tr), v in taps.items():
        _check_trial(path, s, tr, v, period[(s, tr)], smt[s])
    trials = [[tr for (s2, tr) in taps if s2 == s] for s in order]
    n_tr = max(len(t) for t in trials)
    n_tap = max(len(v) for v in taps.values())
    per = np.full((len(order), n_tr), np.nan)
    tt = np.zeros((len(order), n_tr, n_tap))
    mask = np.zeros((len(order), n_tr, n_tap), bool)
    for i, s in enumerate(order):
        per[i, :] = smt[s] / 1e3  # padding trials: paced at the SMT, all taps masked
        for j, tr in enumerate(trials[i]):
            per[i, j] = period[(s, tr)] / 1e3
            v = [t for t, _ in taps[(s, tr)]]
            tt[i, j, :len(v)] = v
            mask[i, j, :len(v)] = True
    f = default_float()
    data = TapData(smt=jnp.asarray([smt[s] / 1e3 for s in order], f),
                   period=jnp.asarray(per, f), taps=jnp.asarray(tt, f), mask=jnp.asarray(mask))
    return TapCohort(order, trials, data)


def read_summary(path: str | os.PathLike) -> SummaryCohort:
    """Read a summary CSV (see the module docstring) into a padded [`SummaryData`][] cohort.

    **Raises:** `CSVFormatError` naming the line and column of a missing column, a
    non-numeric/empty/NaN value, a non-positive SMT or ratio, an SMT that changes within
    a subject, a repeated ratio, or a subject with one row.
    """
    smt, conds, order, counts, lines, first = {}, {}, [], {}, {}, {}
    for line, row in _rows(path, SUMMARY_COLUMNS):
        s = _label(path, line, "subject", row["subject"])
        _same(path, line, "smt_ms", smt, s, _number(path, line, "smt_ms", row["smt_ms"],
                                                    positive=True), first)
        r = _number(path, line, "period_ratio", row["period_ratio"], positive=True)
        a = _number(path, line, "asynchrony_ms", row["asynchrony_ms"])
        c = conds.setdefault(s, {})
        if r in c:
            raise CSVFormatError(f"{path}, line {line}, column period_ratio: ratio {r} repeats "
                                 f"line {c[r][1]} for subject {s!r}; give one row per condition.")
        c[r] = (a, line)
        if s not in counts:
            order.append(s)
        counts[s] = counts.get(s, 0) + 1
        lines.setdefault(s, line)
    _check_counts(path, counts, lines)
    n = max(len(c) for c in conds.values())
    ratio, asy, mask = np.ones((len(order), n)), np.zeros((len(order), n)), np.zeros((len(order), n), bool)
    for i, s in enumerate(order):
        for j, (r, (a, _)) in enumerate(sorted(conds[s].items())):
            ratio[i, j], asy[i, j], mask[i, j] = r, a, True
    f = default_float()
    data = SummaryData(smt=jnp.asarray([smt[s] / 1e3 for s in order], f),
                       ratio=jnp.asarray(ratio, f), asynchrony=jnp.asarray(asy, f),
                       mask=jnp.asarray(mask))
    return SummaryCohort(order, data)
