"""A small synthetic beat corpus in the layout `nrtjax train_beats` reads: drum patterns
at random tempi (4/4, downbeats known), FLAC at 22050 Hz, `.beats` files, a manifest."""

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from nrtjax.audio.synth import render_drums

SR = 22050


def drum_hits(beats: np.ndarray, rng) -> list:
    hits = []
    for k, b in enumerate(beats):
        hits.append((b, "kick" if k % 2 == 0 else "snare", 1.0 if k % 4 == 0 else 0.7))
        hits.append((b, "hat", 0.5))
        if k + 1 < beats.size and rng.random() < 0.8:
            hits.append((0.5 * (b + beats[k + 1]), "hat", 0.3))
    return hits


def write_corpus(root: Path, *, n_items: int = 12, seconds: float = 12.0, seed: int = 0) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_items):
        bpm = rng.uniform(80, 160)
        beats = np.arange(rng.uniform(0.1, 0.6), seconds - 0.1, 60 / bpm)
        y = render_drums(drum_hits(beats, rng), seconds, SR, key=rng)
        y = 0.8 * y / np.abs(y).max() + 0.002 * rng.standard_normal(y.size)
        name = f"synth{i:03d}"
        sf.write(root / f"{name}.flac", y.astype(np.float32), SR)
        (root / f"{name}.beats").write_text(
            "".join(f"{t:.6f} {k % 4 + 1}\n" for k, t in enumerate(beats)))
        split = "train" if i < n_items - 4 else ("valid" if i < n_items - 2 else "test")
        items.append({"name": name, "audio": f"{name}.flac", "beats": f"{name}.beats",
                      "split": split, "piece": name, "bpm": bpm})
    (root / "manifest.json").write_text(json.dumps({"version": "synthetic", "items": items}))
    return root
