"""Beat accuracy of nrtjax's groove extraction vs librosa.beat.beat_track on real music.

Real music here means General MIDI songs shipped by Debian packages (`mma` examples, the
dev set; `planetblupi-music-midi`, held out: never used for tuning), rendered to audio by
fluidsynth with the General MIDI soundfont that ships inside the pretty_midi wheel.
Reference beats are pretty_midi's beats from the MIDI file (tempo and time-signature
changes included), moved by a constant when the file's notes are all displaced from its
own beat grid (no note within 10 ms of a sixteenth of the grid, and at least half of them
on the grid shifted by one constant; `nrtjax.audio.beat_eval.grid_delay`): the music's
beats are where its notes are. The shift comes from the MIDI notes alone, never from the
audio or a tracker, and applies to both trackers alike; the tables list it. Both trackers get the same rendered excerpt; the score is the beat
F-measure (70 ms window, first 5 s ignored, nrtjax.audio.beat_eval.f_measure). The
excerpt's last 100 ms are ignored too, for both sides: reference beats there are left
out (one may not be audible yet), so an estimate there could never be matched; the
tables also give the means with the estimates not cut (`*_uncut` in the CSV).

The script installs what it needs (apt-get: fluidsynth, mma, planetblupi-music-midi;
pip: pretty_midi) when it is missing, renders into a cache folder, and writes a per-file
CSV table and a Markdown table.

    .venv/bin/python scripts/eval_beats.py [--out outputs/eval_beats] [--seconds 40]
"""

import argparse
import csv
import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

END_MARGIN = 0.1  # s: reference beats and estimates are scored up to the excerpt's end minus this
DEBS = ("fluidsynth", "mma", "planetblupi-music-midi")
SETS = {
    "dev": (Path("/usr/share/doc/mma/examples"),),
    "heldout": (Path("/usr/share/planetblupi/music"),),
}


def ensure_tools() -> None:
    """Install fluidsynth, the MIDI packages and pretty_midi if they are missing."""
    missing = [d for d in DEBS if subprocess.run(["dpkg", "-s", d], capture_output=True).returncode]
    if missing:
        print(f"installing Debian packages: {' '.join(missing)}", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)
    if importlib.util.find_spec("pretty_midi") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pretty_midi"], check=True)


def midi_files(name: str) -> list[Path]:
    files = []
    for root in SETS[name]:
        files += sorted(p for p in root.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
    return files


def reference_beats(pm, end: float) -> tuple[np.ndarray, float]:
    """pretty_midi's beats up to `end`, shifted by the notes' constant delay from the
    grid when no note is on the unshifted grid (see the module docstring).

    **Returns:** `(beats, shift_s)`."""
    from nrtjax.audio.beat_eval import grid_delay

    beats = pm.get_beats()
    onsets = np.array([n.start for inst in pm.instruments for n in inst.notes if n.start < end])
    shift = 0.0
    span = beats[beats < end + 2.0]
    if onsets.size and span.size >= 2 and np.any((onsets >= span[0]) & (onsets < span[-1])):
        delay, at_delay, at_zero = grid_delay(onsets, span)
        if at_zero < 0.05 and at_delay >= 0.5:
            shift = delay
    beats = beats + shift
    return beats[beats < end - END_MARGIN], shift


def render(midi: Path, cache: Path, seconds: float, sr: int):
    """Render the first `seconds` of `midi`; return (audio, sr, reference beats, shift)
    or None."""
    import pretty_midi
    import soundfile as sf

    pm = pretty_midi.PrettyMIDI(str(midi))
    end = min(seconds, pm.get_end_time())
    beats, shift = reference_beats(pm, end)
    if end < 15.0 or beats[beats >= 5.0].size < 8:
        return None
    wav = cache / (midi.parent.name + "_" + midi.stem + ".wav")
    if not wav.exists():
        for inst in pm.instruments:
            inst.notes = [n for n in inst.notes if n.start < end]
        tmp_mid = cache / (wav.stem + ".mid")
        pm.write(str(tmp_mid))
        sf2 = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
        subprocess.run(["fluidsynth", "-ni", "-g", "0.6", "-r", str(sr), "-F", str(wav),
                        str(sf2), str(tmp_mid)], check=True, capture_output=True)
        tmp_mid.unlink()
    audio, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)[: int(end * file_sr)]
    if np.max(np.abs(audio)) < 1e-4:
        return None
    return audio, file_sr, beats, shift


def score_file(audio, sr, beats, shift, settings):
    import librosa

    from nrtjax.audio.beat_eval import f_measure
    from nrtjax.audio.features import onset_envelope
    from nrtjax.audio.groove import extract_groove_envelope

    t0 = time.perf_counter()
    g = extract_groove_envelope(onset_envelope(audio, sr), settings=settings)
    t_nrt = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, lb = librosa.beat.beat_track(y=audio, sr=sr, units="time")
    t_lib = time.perf_counter() - t0
    ref_bpm = 60.0 / np.median(np.diff(beats))
    # The reference stops END_MARGIN before the excerpt's end (a beat there may not be
    # heard yet); estimates are cut at the same time, as both are at the 5 s skip.
    cut = audio.size / sr - END_MARGIN
    est_n, est_l = np.asarray(g.beats), np.asarray(lb)
    return dict(ref_bpm=ref_bpm, ref_shift_ms=1000 * shift, nrtjax_bpm=g.tempo_bpm,
                f_nrtjax=f_measure(beats, est_n[est_n < cut]),
                f_librosa=f_measure(beats, est_l[est_l < cut]),
                f_nrtjax_uncut=f_measure(beats, est_n), f_librosa_uncut=f_measure(beats, est_l),
                s_nrtjax=t_nrt, s_librosa=t_lib)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/eval_beats")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--sets", default="dev,heldout")
    parser.add_argument("--sr", type=int, default=22050)
    parser.add_argument("--set", action="append", default=[],
                        help="override a TrackerSettings field, e.g. --set harmonic=0.7")
    args = parser.parse_args()
    ensure_tools()
    if not shutil.which("fluidsynth"):
        sys.exit("fluidsynth is not available.")
    import jax

    jax.config.update("jax_enable_x64", True)
    from nrtjax.audio.tracking import TrackerSettings

    default = TrackerSettings()
    settings = TrackerSettings(**{k: type(getattr(default, k))(v)
                                  for k, v in (s.split("=") for s in args.set)})
    out = Path(args.out)
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.sets.split(","):
        for midi in midi_files(name):
            got = render(midi, cache, args.seconds, args.sr)
            if got is None:
                continue
            r = score_file(*got, settings)
            r = dict(set=name, file=f"{midi.parent.name}/{midi.name}", **r)
            rows.append(r)
            print(f"{name:8s} {r['file']:40s} ref {r['ref_bpm']:6.1f} nrtjax {r['nrtjax_bpm']:6.1f} "
                  f"F nrtjax {r['f_nrtjax']:.3f} librosa {r['f_librosa']:.3f}", flush=True)
    write_tables(out, rows)


def write_tables(out: Path, rows: list[dict]) -> None:
    from nrtjax.io import atomic_path

    keys = list(rows[0])
    with atomic_path(out / "beat_eval.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(rows)
    lines = ["| set | file | ref BPM | ref shift (ms) | nrtjax BPM | F nrtjax | F librosa |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['file']} | {r['ref_bpm']:.1f} | {r['ref_shift_ms']:.0f} | "
              f"{r['nrtjax_bpm']:.1f} | {r['f_nrtjax']:.3f} | {r['f_librosa']:.3f} |" for r in rows]
    for name in dict.fromkeys(r["set"] for r in rows):
        sub = [r for r in rows if r["set"] == name]
        fn = np.mean([r["f_nrtjax"] for r in sub])
        fl = np.mean([r["f_librosa"] for r in sub])
        un = np.mean([r["f_nrtjax_uncut"] for r in sub])
        ul = np.mean([r["f_librosa_uncut"] for r in sub])
        lines.append(f"| **{name} mean** ({len(sub)} files) | | | | | **{fn:.3f}** | **{fl:.3f}** |")
        lines.append(f"| {name} mean, estimates not cut at the end | | | | | {un:.3f} | {ul:.3f} |")
        print(f"{name}: {len(sub)} files, mean F nrtjax {fn:.3f}, librosa {fl:.3f} "
              f"(estimates not cut at the end: nrtjax {un:.3f}, librosa {ul:.3f})")
    with atomic_path(out / "beat_eval.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print(f"tables: {out / 'beat_eval.csv'}, {out / 'beat_eval.md'}")


if __name__ == "__main__":
    main()
