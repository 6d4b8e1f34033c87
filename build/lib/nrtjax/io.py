"""Atomic file writing: every output goes to a temporary file, then is renamed.

A crash or a bad input therefore never leaves a half-written result behind, and an
existing file is replaced only by a complete one.
"""

import contextlib
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    The temporary file keeps `path`'s suffix, so libraries that pick a format from the
    extension (soundfile, matplotlib, MNE) still work. On error it is removed.

    **Raises:** `PermissionError`/`OSError` naming the directory if it is not writable.
    """
    path = Path(path)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"Cannot create output directory {directory}: {e.strerror}. "
                      "Choose a writable out= directory.") from e
    if not os.access(directory, os.W_OK):
        raise PermissionError(f"Output directory {directory} is not writable. "
                              "Choose a writable out= directory.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=directory)
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates owner-only files; give the result the permissions of a normal file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "tolist"):  # numpy / jax arrays and scalars
        return _jsonable(np.asarray(x).tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write `obj` (dicts, lists, numbers, arrays) as indented JSON, atomically.
    Non-finite floats become `null` so that the file stays valid JSON."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=True) + "\n")
    return Path(path)


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    """Write a CSV with a header row, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for row in rows:
                w.writerow([_format(v) for v in row])
    return Path(path)


def write_columns(path: str | os.PathLike, columns: dict[str, np.ndarray]) -> Path:
    """Write equal-length 1-D arrays as the columns of a CSV, atomically."""
    arrays = [np.asarray(v).reshape(-1) for v in columns.values()]
    if len({a.shape[0] for a in arrays}) > 1:
        raise ValueError(f"CSV columns differ in length: {[a.shape[0] for a in arrays]}.")
    return write_csv(path, list(columns), zip(*arrays))


def _format(v):
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return v


def write_npz(path: str | os.PathLike, **arrays) -> Path:
    """Save numeric arrays to `.npz` atomically (read back with `allow_pickle=False`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
    return Path(path)


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
