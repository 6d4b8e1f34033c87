"""Training data for the beat network: annotated recordings -> spectrograms and widened
beat/downbeat targets, cached atomically, packed into one array for random crops.

A corpus is a folder with a manifest JSON (`items`: one entry per recording with its
`split`) and per item an audio file and a `.beats` file of lines `time_s beat_in_bar`
(`beat_in_bar` 1 marks a downbeat). [`read_corpus`][] reads it; nothing is ever
downloaded.
"""

import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..io import write_npz
from .features import FPS, spectrogram


class CorpusItem(NamedTuple):
    """One annotated recording: `name`, `audio` and `beats` file paths, `split`
    (`"train"`, `"valid"` or `"test"`) and `piece` (the source piece; splits never share
    one)."""

    name: str
    audio: Path
    beats: Path
    split: str
    piece: str


def read_beats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Beat and downbeat times (s) from a `.beats` file (lines `time_s beat_in_bar`; a
    line with the time alone is a beat of unknown position in the bar).

    **Raises:** `ValueError` naming the file and line for anything else (text, NaN,
    negative or decreasing times).
    """
    path = Path(path)
    beats, down = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            t = float(parts[0])
            pos = float(parts[1]) if len(parts) > 1 else 0.0
        except ValueError:
            raise ValueError(f"{path}, line {n}: expected 'time_s beat_in_bar', got {line!r}.")
        if not np.isfinite(t) or t < 0 or (beats and t <= beats[-1]):
            raise ValueError(f"{path}, line {n}: beat time {parts[0]} is not finite, "
                             "non-negative and after the previous one.")
        beats.append(t)
        if pos == 1:
            down.append(t)
    return np.asarray(beats, np.float64), np.asarray(down, np.float64)


def read_corpus(root: str | Path) -> tuple[list[CorpusItem], dict]:
    """The items of a corpus folder and its manifest.

    The manifest is the one JSON file at the top of `root` with an `items` list; each
    item names its `split`, its audio (`audio`, `flac` or `path`, relative to `root`), its
    beats (`beats`, default the audio path with suffix `.beats`), its `name` (default the
    audio stem) and its source `piece` (`piece` or `source`, default the name).

    **Returns:** `(items, manifest)`.

    **Raises:** `FileNotFoundError` / `ValueError` naming the corpus and the problem.
    """
    root = Path(root)
    candidates = sorted(root.glob("*.json")) if root.is_dir() else []
    manifests = [p for p in candidates if "items" in _read_json(p)]
    if len(manifests) != 1:
        raise FileNotFoundError(f"{root} has {len(manifests)} manifest JSON files with an "
                                "'items' list; point to a corpus folder with exactly one.")
    manifest = _read_json(manifests[0])
    items = []
    for k, entry in enumerate(manifest["items"]):
        audio = next((entry[f] for f in ("audio", "flac", "path") if f in entry), None)
        if audio is None or "split" not in entry:
            raise ValueError(f"{manifests[0]}: item {k} lacks its audio path or split.")
        audio = root / audio
        beats = root / entry["beats"] if "beats" in entry else audio.with_suffix(".beats")
        name = str(entry.get("name", Path(audio).stem))
        piece = str(entry.get("piece", entry.get("source", name)))
        items.append(CorpusItem(name, audio, beats, str(entry["split"]), piece))
    return items, manifest


def _read_json(path: Path) -> dict:
    try:
        out = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"Cannot read {path} as JSON ({e}).") from e
    return out if isinstance(out, dict) else {}


def manifest_hash(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical JSON (identifies a corpus version)."""
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


WIDEN = 0.5
"""The target of the two frames beside an annotated beat (its own frame is 1)."""


def targets(beats: np.ndarray, downbeats: np.ndarray, frames: int, *, fps: float = FPS,
            widen: float = WIDEN) -> np.ndarray:
    """Frame targets, shape `(2, frames)`: row 0 beats, row 1 downbeats. The frame
    nearest each annotation is 1 and its two neighbours `widen` (Böck, Krebs & Widmer
    2016: the annotation's own timing is uncertain by about a frame)."""
    out = np.zeros((2, frames), np.float32)
    for row, times in enumerate((beats, downbeats)):
        idx = np.round(np.asarray(times) * fps).astype(np.int64)
        idx = idx[(idx >= 0) & (idx < frames)]
        for shift in (-1, 1):
            j = idx + shift
            j = j[(j >= 0) & (j < frames)]
            out[row, j] = np.maximum(out[row, j], widen)
        out[row, idx] = 1.0
    return out


def item_arrays(item: CorpusItem) -> tuple[np.ndarray, np.ndarray]:
    """Spectrogram `(bands, frames)` and targets `(2, frames)` of one corpus item."""
    import soundfile as sf

    try:
        audio, sr = sf.read(str(item.audio), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ValueError(f"Cannot read corpus audio {item.audio} ({e}); rebuild the corpus.") from e
    x = spectrogram(audio.mean(axis=1), sr)
    beats, down = read_beats(item.beats)
    return x, targets(beats, down, x.shape[1])


def cached_item(item: CorpusItem, cache_dir: str | Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """[`item_arrays`][] of one item, cached as `cache_dir/tag/NAME_KEY.npz` (written
    atomically; `KEY` hashes the audio and beats files' paths, sizes and modification
    times, so a rebuilt item is recomputed)."""
    stamp = "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                     for p in (Path(item.audio), Path(item.beats)))
    key = hashlib.sha1(stamp.encode()).hexdigest()[:12]
    path = Path(cache_dir) / tag / f"{item.name}_{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            return f["x"], f["y"]
    x, y = item_arrays(item)
    write_npz(path, x=x, y=y)
    return x, y


def cached_split(items: list[CorpusItem], split: str, cache_dir: str | Path, tag: str, *,
                 progress: bool = True) -> dict[str, np.ndarray]:
    """The spectrograms and targets of one split, concatenated along time (each item's
    computed once and cached by [`cached_item`][]).

    **Returns:** `{"x": (bands, T), "y": (2, T), "offsets": (items + 1,), "names": ...}`;
    item `i` covers frames `offsets[i]:offsets[i + 1]`.
    """
    from tqdm.auto import tqdm

    chosen = [it for it in items if it.split == split]
    if not chosen:
        raise ValueError(f"The corpus has no items in split {split!r}.")
    xs, ys = [], []
    for it in tqdm(chosen, desc=f"features {split}", disable=not progress):
        x, y = cached_item(it, cache_dir, tag)
        xs.append(x)
        ys.append(y)
    offsets = np.concatenate([[0], np.cumsum([x.shape[1] for x in xs])]).astype(np.int64)
    return {"x": np.concatenate(xs, axis=1), "y": np.concatenate(ys, axis=1),
            "offsets": offsets, "names": np.asarray([it.name for it in chosen])}


def local_tempo(y: np.ndarray, fps: float = FPS) -> np.ndarray:
    """The annotated tempo (BPM) at every frame of one item's targets `y` `(2, frames)`:
    60 fps over the interval between the annotated beats (frames where `y[0]` is 1) around
    it; 0 before the first beat, after the last and where there are no beats."""
    idx = np.flatnonzero(y[0] == 1.0)
    out = np.zeros(y.shape[1], np.float32)
    for a, b in zip(idx[:-1], idx[1:]):
        out[a:b] = 60.0 * fps / (b - a)
    return out


def pack(split: dict[str, np.ndarray], crop: int) -> dict[str, np.ndarray]:
    """Training arrays for random crops of `crop` frames: items shorter than a crop are
    padded with silent, unscored frames; `starts` lists every frame at which a crop fits
    inside one item, so a uniform draw from it weights items by their length.

    **Returns:** `{"x": (bands, T'), "y": (2, T'), "mask": (T',), "tempo": (T',),
    "starts": (n,)}` (`tempo`: [`local_tempo`][] of each item, 0 on padding).
    """
    xs, ys, ms, ts, starts = [], [], [], [], []
    at = 0
    off = split["offsets"]
    for i in range(off.size - 1):
        x = split["x"][:, off[i]:off[i + 1]]
        y = split["y"][:, off[i]:off[i + 1]]
        n = x.shape[1]
        pad = max(0, crop - n)
        xs.append(np.pad(x, ((0, 0), (0, pad))))
        ys.append(np.pad(y, ((0, 0), (0, pad))))
        ms.append(np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]))
        ts.append(np.pad(local_tempo(y), (0, pad)))
        starts.append(at + np.arange(n + pad - crop + 1))
        at += n + pad
    return {"x": np.concatenate(xs, axis=1), "y": np.concatenate(ys, axis=1),
            "mask": np.concatenate(ms), "tempo": np.concatenate(ts),
            "starts": np.concatenate(starts).astype(np.int32)}
