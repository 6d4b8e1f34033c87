"""Ship a trained beat network: copy it into nrtjax/beats/checkpoints, record its scores,
and regenerate the fixed-activation reference of tests/test_beats_track.py.

    .venv/bin/python scripts/ship_beatnet.py RUN_DIR [--scores NAME=FILE.json ...]

`RUN_DIR` is a `nrtjax train_beats` run folder (its `beatnet.eqx` and `beatnet.json`, the
model chosen on the valid split). Each `--scores NAME=FILE` merges the JSON object in
FILE (e.g. the means that `scripts/eval_beats.py` printed for a split) into the shipped
model card under `scores.NAME`; `scores.test` is written once per shipped model.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--scores", action="append", default=[], metavar="NAME=FILE")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from experiments import beat_data
    from nrtjax.beats import SHIPPED, activation_from_spectrogram, load_model
    from nrtjax.io import atomic_path, write_json, write_npz
    from tests.test_beats_track import EXPECTED, fixed_input

    src = args.run_dir / "beatnet.eqx"
    card = json.loads(src.with_suffix(".json").read_text())
    scores = card.get("scores", {})
    if SHIPPED.exists() and SHIPPED.read_bytes() == src.read_bytes():
        scores = {**json.loads(SHIPPED.with_suffix(".json").read_text()).get("scores", {}),
                  **scores}
    for spec in args.scores:
        name, file = spec.split("=", 1)
        scores[name] = json.loads(Path(file).read_text())
    card["scores"] = scores
    # A corpus in the user's cache is recorded as the cache path it has on every machine.
    root = str(beat_data.cache_dir("x").parent)

    def portable(p):
        return p.replace(root, "$NRTJAX_CACHE/beat_data") if isinstance(p, str) else p

    card["config"]["corpus"] = portable(card["config"].get("corpus"))
    card["corpus"]["path"] = portable(card["corpus"].get("path"))
    card["config"]["extra_corpora"] = [portable(p) for p in card["config"].get("extra_corpora", [])]
    for extra in card["corpus"].get("extra", []):
        extra["path"] = portable(extra["path"])
    with atomic_path(SHIPPED) as tmp:
        shutil.copyfile(src, tmp)
    write_json(SHIPPED.with_suffix(".json"), card)
    act = activation_from_spectrogram(load_model(), fixed_input())
    write_npz(EXPECTED, beat=act.beat, downbeat=act.downbeat)
    print(f"shipped {src} -> {SHIPPED} ({SHIPPED.stat().st_size / 1024:.0f} KiB); scores: "
          f"{sorted(scores)}; reference activation -> {EXPECTED}")


if __name__ == "__main__":
    main()
