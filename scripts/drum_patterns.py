"""Drum patterns alone through the beat tracker: which tempo does each decoder report?

Common 4/4 drum patterns (a backbeat with and without hi-hats, four-on-the-floor with
off-beat hats, sixteenth hats, a breakbeat), written as General MIDI drum notes, rendered
with fluidsynth and the GM soundfonts of Debian's packages (installed when missing, as
`nrtjax beat_data` does), and tracked by the network with the oscillator decoder (its
tempo head off, `tempo_weight` 0, and read with `tempo_weight` 1, the default) and the HMM
(its default, the head off). The beat is the
quarter note. Prints one row per clip and writes them to `--out` (CSV): the reported
tempi, whether each is within 4 % of the true tempo (Acc1), mir_eval's beat F (first 5 s
left out), and the tempo head's probability at half,
one and twice the true tempo (normalised over the three).

    python scripts/drum_patterns.py --soundfonts FluidR3_GM,TimGM6mb --bpm 100,124,140,174

`--alternation` instead tracks the 120 BPM alternation of `tests/test_groove_cli.py` (a
70 Hz sine kick and a white-noise burst, each decaying in 30 ms, 12 s) and the same clip
with either sound replaced by a synthesised kick or snare (`nrtjax.beats.corpus.drum_sound`),
printing the tempo head's probability at 60 and 120 BPM (normalised over the two), the beat
activation at the first and second sounds, and the oscillator's tempo with `tempo_weight`
0 and 1.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KICK, SNARE, CLAP, CLOSED_HAT, OPEN_HAT = 36, 38, 39, 42, 46
# Sixteenth steps of one 4/4 bar per instrument.
PATTERNS = {
    "rock": [(KICK, [0, 8]), (SNARE, [4, 12]), (CLOSED_HAT, range(0, 16, 2))],
    "kick_snare": [(KICK, [0, 8]), (SNARE, [4, 12])],
    "house": [(KICK, [0, 4, 8, 12]), (OPEN_HAT, [2, 6, 10, 14]), (CLAP, [4, 12])],
    "four_floor_clap": [(KICK, [0, 4, 8, 12]), (CLAP, [4, 12])],
    "kick_offbeat_hats": [(KICK, [0, 4, 8, 12]), (CLOSED_HAT, [2, 6, 10, 14])],
    "techno_16ths": [(KICK, [0, 4, 8, 12]), (CLOSED_HAT, range(16)), (CLAP, [4, 12])],
    "breakbeat": [(KICK, [0, 10]), (SNARE, [4, 12]), (CLOSED_HAT, range(0, 16, 2)),
                  (OPEN_HAT, [14])],
}


def pattern_midi(pattern: list, bpm: float, seconds: float):
    """A PrettyMIDI drum track repeating `pattern` for `seconds` (accented quarter notes)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    drums = pretty_midi.Instrument(0, is_drum=True)
    step = 60.0 / bpm / 4
    for bar in range(int(seconds / (16 * step)) + 1):
        for note, steps in pattern:
            for s in steps:
                t = (bar * 16 + s) * step
                if t < seconds:
                    drums.notes.append(pretty_midi.Note(100 if s % 4 == 0 else 80, note, t, t + 0.1))
    pm.instruments.append(drums)
    return pm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soundfonts", default="FluidR3_GM,TimGM6mb")
    parser.add_argument("--bpm", default="100,124,140,174", help="tempi (quarter notes a minute)")
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--checkpoint", default=None, help="beat network (default: the shipped one)")
    parser.add_argument("--out", default="outputs/drum_patterns.csv")
    parser.add_argument("--alternation", action="store_true",
                        help="only the kick and noise alternation and its variants")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.alternation:
        alternation(args.checkpoint)
        return
    fonts = [s.strip() for s in args.soundfonts.split(",") if s.strip()]
    names = [p.strip() for p in args.patterns.split(",") if p.strip()]
    tempi = [float(b) for b in args.bpm.split(",")]
    from nrtjax.beats.corpus import SOUNDFONTS

    for name in fonts:
        if name not in SOUNDFONTS:
            sys.exit(f"Unknown soundfont {name!r}: choose from {', '.join(SOUNDFONTS)}.")
    for name in names:
        if name not in PATTERNS:
            sys.exit(f"Unknown pattern {name!r}: choose from {', '.join(PATTERNS)}.")
    if not tempi or min(tempi) <= 0 or args.seconds < 10:
        sys.exit("Need tempi > 0 and --seconds >= 10 (the scores leave out the first 5 s).")

    import jax

    jax.config.update("jax_enable_x64", True)
    from experiments.beat_data import ensure_packages
    from nrtjax.audio.beat_eval import score_beats
    from nrtjax.beats import beat_activation, load_model
    from nrtjax.beats.corpus import render
    from nrtjax.beats.decode import OscillatorSettings, decode_oscillator
    from nrtjax.beats.hmm import decode_hmm
    from nrtjax.beats.network import tempo_log_prior
    from nrtjax.io import write_csv

    ensure_packages(True)
    model = load_model(args.checkpoint)
    sr = 22050
    decoders = {"oscillator": lambda a: decode_oscillator(
                    a, settings=OscillatorSettings(tempo_weight=0.0)),
                "oscillator_head": lambda a: decode_oscillator(
                    a, settings=OscillatorSettings(tempo_weight=1.0)),
                "hmm": decode_hmm}
    rows = []
    for font in fonts:
        for bpm in tempi:
            for name in names:
                pm = pattern_midi(PATTERNS[name], bpm, args.seconds)
                x = render(pm, SOUNDFONTS[font][0], sr)[: int(args.seconds * sr)]
                act = beat_activation(x, sr, model=model)
                ref = np.arange(0.0, args.seconds, 60.0 / bpm)
                row = {"soundfont": font, "pattern": name, "bpm": bpm}
                for dec, fn in decoders.items():
                    r = fn(act)
                    sc = score_beats(ref, np.sort(r.beats), estimate_tempo=float(r.tempo_bpm))
                    row[f"{dec}_bpm"] = round(float(r.tempo_bpm), 1)
                    row[f"{dec}_f"] = round(sc["f_measure"], 3)
                    row[f"{dec}_acc1"] = int(sc["tempo_acc1"])
                if act.tempo is not None:
                    p = np.exp(tempo_log_prior(act.tempo, np.array([bpm / 2, bpm, 2 * bpm])))
                    for level, q in zip(("half", "one", "double"), p / p.sum()):
                        row[f"head_{level}"] = round(float(q), 2)
                rows.append(row)
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    out = write_csv(args.out, list(rows[0]), [list(r.values()) for r in rows])
    for dec in decoders:
        ok = sum(r[f"{dec}_acc1"] for r in rows)
        print(f"{dec}: right tempo on {ok} of {len(rows)} clips, mean F "
              f"{np.mean([r[f'{dec}_f'] for r in rows]):.3f}")
    print(f"wrote {out}")


def alternation(checkpoint: str | None, sr: int = 22050, bpm: float = 120.0) -> None:
    """The kick and noise alternation and its variants (module docstring)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from nrtjax.beats import beat_activation, load_model
    from nrtjax.beats.corpus import drum_sound
    from nrtjax.beats.decode import OscillatorSettings, decode_oscillator
    from nrtjax.beats.network import tempo_log_prior

    model = load_model(checkpoint)
    n = np.arange(int(0.1 * sr))
    decay = np.exp(-n / (0.03 * sr))
    sine = np.sin(2 * np.pi * 70 * n / sr) * decay
    noise = np.random.default_rng(0).standard_normal(n.size) * 0.5 * decay
    kick, snare = (drum_sound(k, sr, np.random.default_rng(s)) for k, s in (("kick", 1), ("snare", 2)))
    variants = {"70 Hz sine / white noise (the test)": (sine, noise),
                "synthesised kick / white noise": (kick, noise),
                "70 Hz sine / synthesised snare": (sine, snare),
                "synthesised kick / synthesised snare": (kick, snare)}
    beats = np.arange(0.2, 12.0 - 0.2, 60 / bpm)
    for name, sounds in variants.items():
        y = 0.01 * np.random.default_rng(0).standard_normal(int(12.0 * sr))
        for k, b in enumerate(beats):
            v = sounds[k % 2]
            i = int(b * sr)
            y[i:i + v.size] += v[: y.size - i]
        act = beat_activation((y / np.abs(y).max()).astype(np.float32), sr, model=model)
        frames = np.round(beats * act.fps).astype(int)
        peak = [float(np.mean(np.asarray(act.beat)[frames[j::2]])) for j in (0, 1)]
        line = f"{name}: activation {peak[0]:.2f} / {peak[1]:.2f}"
        if act.tempo is not None:
            p = np.exp(tempo_log_prior(act.tempo, np.array([bpm / 2, bpm])))
            line += f", head 60 / 120 BPM {p[0] / p.sum():.2f} / {p[1] / p.sum():.2f}"
        tempi = [float(decode_oscillator(act, settings=OscillatorSettings(tempo_weight=w)).tempo_bpm)
                 for w in (0.0, 1.0)]
        print(line + f", oscillator {tempi[0]:.1f} BPM (w_T 0), {tempi[1]:.1f} BPM (w_T 1)",
              flush=True)


if __name__ == "__main__":
    main()
