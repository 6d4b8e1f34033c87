"""Build the beat-tracking corpus: MMA grooves and Debian MIDI rendered with annotated beats.

    nrtjax beat_data [out=DIR] [n_train=800] [seed=0] [workers=2]

Writes `<out>/<split>/<name>.flac` (mono, 22050 Hz) and `<name>.beats` (`time_s
beat_in_bar` lines, 1 = downbeat) for the splits train / valid / test, and
`<out>/manifest.json` listing every item (split, source piece, package and licence,
soundfont, augmentation, duration). The default `out` is
`$NRTJAX_CACHE/beat_data/<version>` (else `$XDG_CACHE_HOME/nrtjax/...`, else
`~/.cache/nrtjax/...`). Items are built in `<out>.partial/` (rerunning resumes there) and
the folder is renamed onto `out` when all are done; an existing complete `out` is kept.
Every random choice of item i comes from the seed and i alone, so the corpus does not
depend on `workers`. Missing Debian packages (mma, fluidsynth, soundfonts, MIDI) are
installed with apt-get when `install=true`. Conventions: `nrtjax.beats.corpus`.
"""

import dataclasses
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from experiments._job import BaseConfig, ConfigError, Run, check_choice, check_range, job
from nrtjax.io import write_json

SPLITS = ("train", "valid", "test")
MAX_ATTEMPTS = 8  # draws per item before it is left out
HELD_OUT_PACKAGE = "planetblupi-music-midi"  # the old held-out set: whole, in test
# Relative draw weights; the sf3 (Vorbis) soundfonts take ~10x longer to load.
SOUNDFONT_WEIGHT = {"FluidR3_GM": 0.3, "TimGM6mb": 0.2, "OPL3_FM": 0.2, "FluidR3Mono_GM": 0.15,
                    "MuseScore_General": 0.15}
DEFAULT_SOURCES = ("mma", "planetblupi-music-midi", "simutrans-data", "freedink-data",
                   "kobodeluxe-data", "liquidwar-data", "pinball-table-hurd-data")
ALL_SOURCES = (*DEFAULT_SOURCES, "music21")
STEMS = {"train": (("all", "no_drums", "drums_only", "drop_one"), (0.6, 0.15, 0.1, 0.15)),
         "eval": (("all", "no_drums"), (0.8, 0.2))}


@dataclasses.dataclass
class Config(BaseConfig):
    version: str = "v2"
    out: str = ""
    n_train: int = 800
    n_valid: int = 40
    n_test: int = 60
    min_clip_s: float = 20.0
    max_clip_s: float = 40.0
    eval_clip_s: float = 30.0
    sr: int = 22050
    valid_fraction: float = 0.08  # of source families (hash of the family name)
    test_fraction: float = 0.12
    mma_share: float = 0.75  # of train/valid items drawn from MMA grooves (rest: MIDI files)
    tempo_min: float = 60.0  # counted beats a minute, MMA grooves
    tempo_max: float = 180.0
    negative_p: float = 0.25  # train items with a silent or free-time stretch
    whole_negative_p: float = 0.03  # train items with no beat at all
    # Train items whose drums are kept bare (kick, snare, clap, toms; no hats, cymbals or
    # other instruments) in place of the stem mode drawn (0: no draw, the corpus as before).
    bare_drums_p: float = 0.0
    # Train items whose drums are played by a synthesised drum machine (kick, snare, clap,
    # toms, hats and cymbals with parameters drawn per item) instead of the soundfont's kit,
    # mixed -6..+6 dB against the rest (0: no draw, the corpus as before).
    synth_drums_p: float = 0.0
    soundfonts: list[str] = dataclasses.field(default_factory=lambda: list(SOUNDFONT_WEIGHT))
    # Source packages drawn from: MMA (grooves and its example songs), Debian's MIDI
    # packages, and "music21" (scores from the music21 wheel's corpus, nrtjax.beats.scores;
    # not in the default set, which builds the v2 corpus).
    sources: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_SOURCES))
    workers: int = 2
    install: bool = True

    def __post_init__(self):
        for k in ("n_train", "n_valid", "n_test"):
            check_range(k, getattr(self, k), low=0, high=100000)
        check_range("min_clip_s", self.min_clip_s, low=6.0, high=600.0,
                    hint="clips need beats after the 5 s the scorers skip.")
        check_range("max_clip_s", self.max_clip_s, low=self.min_clip_s, high=600.0)
        check_range("eval_clip_s", self.eval_clip_s, low=6.0, high=600.0)
        check_range("sr", self.sr, low=8000, high=96000)
        check_range("valid_fraction", self.valid_fraction, low=0.0, high=0.5)
        check_range("test_fraction", self.test_fraction, low=0.0, high=0.5)
        check_range("mma_share", self.mma_share, low=0.0, high=1.0)
        check_range("tempo_min", self.tempo_min, low=20.0, high=self.tempo_max)
        check_range("tempo_max", self.tempo_max, low=self.tempo_min, high=400.0)
        check_range("negative_p", self.negative_p, low=0.0, high=1.0)
        check_range("whole_negative_p", self.whole_negative_p, low=0.0, high=1.0)
        check_range("bare_drums_p", self.bare_drums_p, low=0.0, high=1.0)
        check_range("synth_drums_p", self.synth_drums_p, low=0.0, high=1.0)
        check_range("workers", self.workers, low=1, high=64)
        check_range("seed", self.seed, low=0)
        if not self.soundfonts:
            raise ConfigError("soundfonts is empty: name at least one of "
                              f"{list(SOUNDFONT_WEIGHT)}.")
        for name in self.soundfonts:
            check_choice("soundfonts", name, SOUNDFONT_WEIGHT)
        if not self.sources:
            raise ConfigError(f"sources is empty: name at least one of {list(ALL_SOURCES)}.")
        for name in self.sources:
            check_choice("sources", name, ALL_SOURCES)
        if not self.version or "/" in self.version:
            raise ConfigError(f"version={self.version!r} must be a plain folder name.")


def cache_dir(version: str) -> Path:
    """`$NRTJAX_CACHE/beat_data/VERSION`, else under `$XDG_CACHE_HOME/nrtjax` or
    `~/.cache/nrtjax`."""
    root = os.environ.get("NRTJAX_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "nrtjax")
    return Path(root) / "beat_data" / version


def ensure_packages(install: bool) -> None:
    """Install the Debian packages the builder needs (apt-get), or say which are missing."""
    from nrtjax.beats.corpus import missing_tools

    missing = missing_tools()
    if not missing:
        return
    if not install:
        raise FileNotFoundError(f"Missing Debian packages: {' '.join(missing)}. Install them "
                                "(apt-get install ...) or rerun with install=true.")
    print(f"installing Debian packages: {' '.join(missing)}", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    try:
        subprocess.run([*apt, "update", "-qq"], check=True, env=env)
        subprocess.run([*apt, "install", "-y", "-qq", "--no-install-recommends", *missing],
                       check=True, env=env)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        raise FileNotFoundError(f"Could not install {' '.join(missing)} with apt-get ({e}). "
                                "Install them as root, then rerun.") from None
    still = missing_tools()
    if still:
        raise FileNotFoundError(f"Debian packages still missing after apt-get: {' '.join(still)}.")


def music21_folder() -> Path:
    """The cached MIDI files made from music21's corpus (beside the corpora)."""
    return cache_dir("music21_midi")


def ensure_music21(install: bool) -> None:
    """Install music21 from PyPI into this Python when missing (`install=true`), and
    export its scores to MIDI once (`nrtjax.beats.scores.export`)."""
    import importlib.util

    if importlib.util.find_spec("music21") is None:
        if not install:
            raise FileNotFoundError("sources includes music21, which is not installed: "
                                    "pip install music21, or rerun with install=true.")
        print("installing music21 (PyPI)", file=sys.stderr, flush=True)
        try:
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "music21>=9"],
                           check=True)
        except subprocess.CalledProcessError as e:
            raise FileNotFoundError(f"Could not install music21 with pip ({e}). Install it "
                                    "into this environment, then rerun.") from None
    from nrtjax.beats.scores import export

    folder = music21_folder()
    index = export(folder)
    print(f"nrtjax beat_data: {len(index['written'])} music21 scores as MIDI in {folder}",
          file=sys.stderr)


def family_split(family: str, cfg: Config) -> str:
    """The split of a source family, from a hash of its name (stable as sources are added)."""
    if family.startswith(HELD_OUT_PACKAGE):
        return "test"
    u = int(hashlib.sha256(family.encode()).hexdigest()[:12], 16) / 16**12
    if u < cfg.test_fraction:
        return "test"
    if u < cfg.test_fraction + cfg.valid_fraction:
        return "valid"
    return "train"


def sources(cfg: Config) -> dict:
    """Source pieces by split: MMA grooves (family = library file) and MIDI files
    (family = package/file)."""
    from nrtjax.beats.corpus import MIDI_SOURCES, mma_grooves

    out = {s: {"mma": [], "midi": [], "held_out": []} for s in SPLITS}
    if "mma" in cfg.sources:
        for g in mma_grooves():
            out[family_split(g.family, cfg)]["mma"].append(dataclasses.asdict(g))
    folders = {k: v for k, v in MIDI_SOURCES.items() if k in cfg.sources}
    if "music21" in cfg.sources:
        folders["music21"] = music21_folder()
    for package, folder in folders.items():
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() not in (".mid", ".midi", ".kar"):
                continue
            rel = p.relative_to(folder).with_suffix("")
            piece = {"package": package, "path": str(p), "family": f"{package}/{rel}"}
            split = family_split(piece["family"], cfg)
            out[split]["held_out" if package == HELD_OUT_PACKAGE else "midi"].append(piece)
    return out


def plan_item(cfg: Config, split: str, index: int, attempt: int, src: dict) -> dict:
    """Every random choice of one item, from (seed, split, index, attempt) alone."""
    from nrtjax.beats.corpus import PROGRESSIONS

    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), index, attempt])
    train = split == "train"
    spec = {"name": f"{split}_{index:05d}", "split": split, "attempt": attempt}
    held = src["held_out"]
    if not train and index < len(held):
        spec["source"] = dict(kind="midi", **held[index])
    else:
        use_mma = src["mma"] and (not src["midi"] or rng.random() < cfg.mma_share)
        if use_mma:
            g = src["mma"][int(rng.integers(len(src["mma"])))]
            spec["source"] = dict(kind="mma", package="mma", groove=g,
                                  progression=int(rng.integers(len(PROGRESSIONS))),
                                  seed=int(rng.integers(1, 2**31)),
                                  beat_bpm=float(np.exp(rng.uniform(np.log(cfg.tempo_min),
                                                                    np.log(cfg.tempo_max)))))
        else:
            pool = src["midi"] or held
            spec["source"] = dict(kind="midi", **pool[int(rng.integers(len(pool)))])
    kind = spec["source"]["kind"]
    scale = 1.0 if kind == "mma" else float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    ramp = rng.random() < 0.3
    spec["tempo"] = {"r0": scale, "r1": scale * float(rng.uniform(0.85, 1.15)) if ramp else scale}
    spec["transpose"] = int(rng.integers(-5, 7))
    names, probs = STEMS["train" if train else "eval"]
    spec["stems"] = str(rng.choice(names, p=probs))
    if train and cfg.bare_drums_p > 0 and rng.random() < cfg.bare_drums_p:
        spec["stems"] = "bare_drums"
    if train and cfg.synth_drums_p > 0 and rng.random() < cfg.synth_drums_p:
        spec["synth_drums"] = {"seed": int(rng.integers(2**31)),
                               "level_db": float(rng.uniform(-6, 6))}
    w = np.array([SOUNDFONT_WEIGHT[k] for k in cfg.soundfonts])
    spec["soundfont"] = str(rng.choice(cfg.soundfonts, p=w / w.sum()))
    spec["fluid"] = {"gain": float(rng.uniform(0.25, 0.6)), "reverb": bool(rng.random() < 0.5),
                     "chorus": bool(rng.random() < 0.3)}
    spec["clip_s"] = (float(rng.uniform(cfg.min_clip_s, cfg.max_clip_s)) if train
                      else cfg.eval_clip_s)
    spec["offset_u"] = float(rng.random())
    spec["negative"] = None
    if train and rng.random() < cfg.whole_negative_p:
        spec["negative"] = {"kind": str(rng.choice(["free", "silence"])), "start_u": 0.0,
                            "length_s": spec["clip_s"]}
    elif train and rng.random() < cfg.negative_p:
        spec["negative"] = {"kind": str(rng.choice(["free", "silence"], p=[0.6, 0.4])),
                            "start_u": float(rng.random()), "length_s": float(rng.uniform(2, 8))}
    eq_p = 0.5 if train else 0.3
    spec["eq"] = str(rng.choice(["lowpass", "highpass", "band"])) if rng.random() < eq_p else "none"
    spec["eq_seed"] = int(rng.integers(2**31))
    spec["reverb"] = ({"rt60": float(rng.uniform(0.2, 1.5)), "wet": float(rng.uniform(0.1, 0.5))}
                      if rng.random() < (0.4 if train else 0.3) else None)
    spec["noise"] = ({"colour": str(rng.choice(["white", "pink", "brown"])),
                      "snr_db": float(rng.uniform(5, 35))}
                     if train and rng.random() < 0.35 else None)
    spec["peak_dbfs"] = float(rng.uniform(-20, -1))
    spec["audio_seed"] = int(rng.integers(2**31))
    return spec


def build_item(spec: dict, directory: str, sr: int) -> dict:
    """Render one planned item into `directory` (FLAC + .beats, atomically); return its
    manifest record, or `{"rejected": reason}` when the notes do not fit the beat grid."""
    from nrtjax.beats.corpus import make_item

    return make_item(spec, Path(directory), sr)


def _build(args):
    spec, directory, sr = args
    try:
        return build_item(spec, directory, sr)
    except RuntimeError as e:  # a tool failed on this piece: reject it, keep going
        return {"rejected": str(e)}


@job("beat_data", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    out = Path(cfg.out) if cfg.out else cache_dir(cfg.version)
    if (out / "manifest.json").exists():
        print(f"nrtjax beat_data: {out} is complete already (manifest.json); delete it to rebuild.",
              file=sys.stderr)
        return json.loads((out / "manifest.json").read_text())["summary"]
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not a finished corpus (no manifest.json). "
                              "Choose another out= or empty it.")
    ensure_packages(cfg.install)
    if "music21" in cfg.sources:
        ensure_music21(cfg.install)
    stage = out.parent / f".{out.name}.partial"
    for s in SPLITS:
        (stage / s).mkdir(parents=True, exist_ok=True)
    src = sources(cfg)
    counts = {"train": cfg.n_train, "valid": cfg.n_valid, "test": cfg.n_test}
    for s in SPLITS:
        if counts[s] and not any(src[s].values()):
            raise ValueError(f"No source piece fell in the {s} split; raise "
                             f"{'test' if s == 'test' else 'valid'}_fraction.")
    # valid and test first: the evaluation sets are final before the (long) train split
    todo = [(s, i) for s in ("valid", "test", "train") for i in range(counts[s])]
    records, rejected = {}, []
    attempts = {k: 0 for k in todo}
    start = time.perf_counter()
    bar = run.progress(total=len(todo), desc="beat_data")
    # Workers are spawned (not forked: this process has JAX's threads); one worker runs here.
    pool = (ProcessPoolExecutor(cfg.workers, mp_context=multiprocessing.get_context("spawn"))
            if cfg.workers > 1 else None)
    try:
        while todo:
            specs = [plan_item(cfg, s, i, attempts[(s, i)], src[s]) for s, i in todo]
            jobs = [(sp, str(stage / sp["split"]), cfg.sr) for sp in specs]
            results = pool.map(_build, jobs) if pool else map(_build, jobs)
            retry = []
            for (s, i), sp, rec in zip(todo, specs, results):
                if "rejected" in rec:
                    rejected.append({"name": sp["name"], "attempt": sp["attempt"],
                                     "source": sp["source"], "reason": rec["rejected"]})
                    attempts[(s, i)] += 1
                    if attempts[(s, i)] < MAX_ATTEMPTS:
                        retry.append((s, i))
                    else:  # a held-out song that never fits its grid: left out, said so
                        print(f"nrtjax beat_data: {sp['name']} left out: {MAX_ATTEMPTS} draws "
                              f"rejected (last: {rec['rejected']})", file=sys.stderr)
                else:
                    records[sp["name"]] = rec
                    bar.update(1)
            todo = retry
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    bar.close()
    manifest = write_manifest(cfg, stage, records, rejected, time.perf_counter() - start)
    if out.exists():  # checked empty before the build
        out.rmdir()
    os.replace(stage, out)
    print(f"nrtjax beat_data: corpus in {out}", file=sys.stderr)
    return manifest["summary"]


def write_manifest(cfg: Config, stage: Path, records: dict, rejected: list, seconds: float) -> dict:
    from nrtjax.beats.corpus import SOUNDFONTS, licence

    items = [records[k] for k in sorted(records)]
    packages = sorted({it["package"] for it in items}
                      | {pkg for _, pkg in SOUNDFONTS.values()})
    summary = {"version": cfg.version, "seed": cfg.seed, "build_s": round(seconds, 1)}
    for s in SPLITS:
        sub = [it for it in items if it["split"] == s]
        summary[f"{s}_items"] = len(sub)
        summary[f"{s}_hours"] = round(sum(it["duration_s"] for it in sub) / 3600, 3)
        summary[f"{s}_pieces"] = len({it["piece"] for it in sub})
    manifest = {
        "summary": summary,
        "format": {"audio": f"mono FLAC, {cfg.sr} Hz, PCM_16",
                   "beats": "text, one 'time_s beat_in_bar' line a beat; beat_in_bar 1 = downbeat",
                   "convention": "quarter-note beats in x/4 and 2/2; dotted-quarter beats in "
                                 "6/8, 9/8, 12/8 (2, 3, 4 a bar)"},
        "licences": {p: licence(p) for p in packages},
        "soundfonts": {k: {"path": v[0], "package": v[1]} for k, v in SOUNDFONTS.items()},
        "tools": tool_versions(),
        "config": dataclasses.asdict(cfg),
        "items": items,
        "rejected": rejected,
    }
    write_json(stage / "manifest.json", manifest)
    return manifest


def tool_versions() -> dict:
    out = {}
    for pkg in ("mma", "fluidsynth"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                           text=True)
        out[pkg] = r.stdout.strip() or "unknown"
    return out


if __name__ == "__main__":
    main()
