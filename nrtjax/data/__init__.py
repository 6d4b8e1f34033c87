"""Published human data shipped with nrtjax, each CSV with its citation in `#` comment lines.

Every loader returns a dict of NumPy arrays (one per column; text columns as string arrays)
plus `"citation"`, the file's comment header. Files (see each header for provenance):

- `scheurich2018_asynchrony.csv`: musicians' mean asynchrony relative to the spontaneous-rate
  condition at 0.70, 0.85, 1.15, 1.30 x SMT (Scheurich, Zamm & Palmer 2018).
- `scheurich2018_smt.csv`: the musicians' and non-musicians' spontaneous rates (same study).
- `zamm2018_rates.csv`, `zamm2018_drift.csv`: pianists' spontaneous and cued rates and the
  adjusted IOI slopes of their unpaced performances (Zamm, Wang & Palmer 2018).
- `consonance_helmholtz.csv`: Helmholtz's consonance ranking with just ratios, as tabulated by
  Shapira Lots & Stone (2008); `consonance_bones2015.csv`: the ranking of Bones & Plack (2015).
"""

import csv
import io
from importlib import resources

import numpy as np

FILES = (
    "scheurich2018_asynchrony.csv", "scheurich2018_smt.csv", "zamm2018_rates.csv",
    "zamm2018_drift.csv", "consonance_helmholtz.csv", "consonance_bones2015.csv",
)
"""The shipped CSV files `load` accepts."""


def _column(values: list[str]) -> np.ndarray:
    if all(v != "" for v in values):
        try:
            return np.asarray([float(v) for v in values], dtype=np.float64)
        except ValueError:
            return np.asarray(values)
    try:  # numeric with gaps: NaN where empty
        return np.asarray([float(v) if v != "" else np.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.asarray(values)


def load(name: str) -> dict[str, np.ndarray | str]:
    """Load one of the shipped CSV files by name (see `FILES`).

    **Returns:** `{column: array, ..., "citation": str}`.

    **Raises:** `ValueError` for an unknown name (listing the available ones).
    """
    if name not in FILES:
        raise ValueError(f"Unknown data file {name!r}; available: {', '.join(FILES)}.")
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    comments = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("#")]
    body = "\n".join(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    rows = list(csv.reader(io.StringIO(body)))
    header, data = rows[0], rows[1:]
    out: dict[str, np.ndarray | str] = {
        key: _column([r[i] for r in data]) for i, key in enumerate(header)
    }
    out["citation"] = "\n".join(comments)
    return out


def scheurich2018_asynchrony() -> dict:
    """Musicians' relative mean asynchronies (ms) and SEs per period ratio."""
    return load("scheurich2018_asynchrony.csv")


def scheurich2018_smt(group: str = "musician") -> np.ndarray:
    """Spontaneous rates in ms of `"musician"` or `"nonmusician"` participants."""
    table = load("scheurich2018_smt.csv")
    if group not in ("musician", "nonmusician"):
        raise ValueError(f"group must be 'musician' or 'nonmusician', got {group!r}.")
    return table["smt_ms"][table["group"] == group]


def zamm2018_rates() -> dict:
    """Per-pianist SPR and cued-rate IOIs (ms)."""
    return load("zamm2018_rates.csv")


def zamm2018_drift() -> dict:
    """Mean adjusted IOI slopes (ms per IOI) and SEs for faster, fast, slow, slower."""
    return load("zamm2018_drift.csv")


def consonance_ranking(source: str = "helmholtz") -> dict:
    """A published consonance ranking: `"helmholtz"` (13 intervals with just ratios, via
    Shapira Lots & Stone 2008) or `"bones2015"` (11 dyads, Bones & Plack 2015)."""
    if source not in ("helmholtz", "bones2015"):
        raise ValueError(f"source must be 'helmholtz' or 'bones2015', got {source!r}.")
    return load(f"consonance_{source}.csv")
