"""Ship a trained beat network, or an ensemble of several: write it into
nrtjax/beats/checkpoints, record its scores, and regenerate the fixed-activation reference
of tests/test_beats_track.py.

    .venv/bin/python scripts/ship_beatnet.py RUN_DIR [RUN_DIR ...] [--scores NAME=FILE.json ...]
        [--drop NAME ...]

Each `RUN_DIR` is a `nrtjax train_beats` run folder (its `beatnet.eqx` and `beatnet.json`,
the model chosen on the valid split) or a `.eqx` file with its `.json` beside it. Several
give a `nrtjax.beats.BeatEnsemble` whose card lists every member's card under `members`
(`train_seconds` is their sum; `config` is the first member's; `corpus` lists every corpus
any member was trained on, the first member's first, each by its manifest's SHA-256, and
each member's card keeps its own). Each `--scores NAME=FILE` merges the JSON object in
FILE (e.g. the means that `scripts/eval_beats.py` printed for a split) into the shipped
model card under `scores.NAME`; `scores.test` is written once per shipped model. Re-shipping
the same network keeps its card's scores except each `--drop NAME` (scores of a decoder
that is no longer the default, or of a split that was replaced).
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, nargs="+")
    parser.add_argument("--scores", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--drop", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from experiments import beat_data
    from nrtjax.beats import (SHIPPED, BeatEnsemble, activation_from_spectrogram, load_model,
                              save_model)
    from nrtjax.io import atomic_path, write_json, write_npz
    from tests.test_beats_track import EXPECTED, fixed_input

    srcs = [p if p.suffix == ".eqx" else p / "beatnet.eqx" for p in args.run_dir]
    # A corpus in the user's cache is recorded as the cache path it has on every machine.
    root = str(beat_data.cache_dir("x").parent)

    def portable(p):
        return p.replace(root, "$NRTJAX_CACHE/beat_data") if isinstance(p, str) else p

    def member_card(src: Path) -> dict:
        card = json.loads(src.with_suffix(".json").read_text())
        card.pop("scores", None)
        card["config"]["corpus"] = portable(card["config"].get("corpus"))
        # Run folders and start points are this machine's paths: keep their names only.
        for key in ("resume", "init_from"):
            if card["config"].get(key):
                card["config"][key] = Path(card["config"][key]).name
        card["corpus"]["path"] = portable(card["corpus"].get("path"))
        card["config"]["extra_corpora"] = [portable(p)
                                           for p in card["config"].get("extra_corpora", [])]
        for extra in card["corpus"].get("extra", []):
            extra["path"] = portable(extra["path"])
        return card

    cards = [member_card(src) for src in srcs]
    if len(cards) == 1:
        card = cards[0]
        same = SHIPPED.exists() and SHIPPED.read_bytes() == srcs[0].read_bytes()
    else:
        corpora = {}  # every member's corpora by manifest, in order of first appearance
        for c in cards:
            for e in [c["corpus"], *c["corpus"].get("extra", [])]:
                corpora.setdefault(e["manifest_sha256"], {k: e[k] for k in ("path", "version",
                                                                            "manifest_sha256")})
        first, *extra = corpora.values()
        card = {"config": cards[0]["config"], "corpus": {**first, "extra": extra},
                "fps": cards[0]["fps"], "n_parameters": sum(c["n_parameters"] for c in cards),
                "train_seconds": sum(c["train_seconds"] for c in cards),
                "valid": [c["valid"] for c in cards], "members": cards}
        same = SHIPPED.exists() and json.loads(SHIPPED.with_suffix(".json").read_text()).get(
            "members") == cards
    old = json.loads(SHIPPED.with_suffix(".json").read_text()).get("scores", {}) if same else {}
    unknown = sorted(set(args.drop) - set(old))
    if unknown:
        sys.exit(f"--drop {' '.join(unknown)}: the shipped card has no such scores "
                 f"(it has {sorted(old)}).")
    scores = {k: v for k, v in old.items() if k not in args.drop}
    for spec in args.scores:
        name, file = spec.split("=", 1)
        scores[name] = json.loads(Path(file).read_text())
    card["scores"] = scores
    if len(srcs) == 1:
        with atomic_path(SHIPPED) as tmp:
            shutil.copyfile(srcs[0], tmp)
        write_json(SHIPPED.with_suffix(".json"), card)
    else:
        card.pop("model", None)
        save_model(SHIPPED, BeatEnsemble([load_model(src) for src in srcs]), info=card)
    act = activation_from_spectrogram(load_model(), fixed_input())
    tempo = {} if act.tempo is None else {"tempo": act.tempo}
    write_npz(EXPECTED, beat=act.beat, downbeat=act.downbeat, **tempo)
    print(f"shipped {', '.join(map(str, srcs))} -> {SHIPPED} ({SHIPPED.stat().st_size / 1024:.0f} KiB); scores: "
          f"{sorted(scores)}; reference activation -> {EXPECTED}")


if __name__ == "__main__":
    main()
