"""The beat-tracking corpus: MIDI with exact beat and downbeat times, rendered to audio.

Sources are material nobody on the project wrote: the groove library of MMA (Musical
MIDI Accompaniment; one *piece* is a groove plus a chord progression, played at a chosen
tempo) and MIDI files shipped in Debian packages. Each item is a clip of a piece, changed
in the MIDI (tempo scale and ramp, transposition, stems dropped or soloed, free-time or
silent stretches without beats) and rendered by fluidsynth with one of several General
MIDI soundfonts, then changed as audio (EQ, reverb, noise, gain).

**Annotation convention.** A beat is the counted beat of the bar: the quarter note in
2/4, 3/4, 4/4 and 5/4; the dotted quarter in compound meters (6/8 has two beats a bar,
9/8 three, 12/8 four). MMA's `Time N` is its number of quarter-note beats a bar: with a
compound `TimeSig` (numerator 6, 9 or 12 over 8) a bar of `Time` quarters holds
numerator/3 beats, evenly spaced; otherwise each of the `Time` quarters is a beat. MIDI
files take pretty_midi's beats and downbeats (the same convention), moved by the notes'
constant delay from their own grid where they have one (`grid_delay`). The first beat of
each bar is the downbeat (`beat_in_bar` 1 in the `.beats` file, as madmom writes them).
"""

import dataclasses
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np


MMA_LIB = Path("/usr/share/mma/lib")
MIDI_SOURCES = {  # Debian package -> folder of its MIDI files (game music, MMA's examples)
    "mma": Path("/usr/share/doc/mma/examples"),
    "planetblupi-music-midi": Path("/usr/share/planetblupi/music"),
    "simutrans-data": Path("/usr/share/games/simutrans/music"),
    "freedink-data": Path("/usr/share/games/dink/dink/Sound"),
    "kobodeluxe-data": Path("/usr/share/kobo-deluxe/sfx"),
    "liquidwar-data": Path("/usr/share/games/liquidwar/music"),
    "pinball-table-hurd-data": Path("/usr/share/games/pinball/hurd"),
}
# Soundfonts: name -> (path, Debian package). MuseScore_General_Lite is the same file as
# MuseScore_General and default-GM a link to FluidR3_GM, so neither is listed.
SOUNDFONTS = {
    "FluidR3_GM": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
    "TimGM6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
    "OPL3_FM": ("/usr/share/sounds/sf2/OPL-3_FM_128M.sf2", "opl3-soundfont"),
    "FluidR3Mono_GM": ("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3", "fluidr3mono-gm-soundfont"),
    "MuseScore_General": ("/usr/share/sounds/sf3/MuseScore_General.sf3",
                          "musescore-general-soundfont-small"),
}
# Chord progressions (in C; MMA's Transpose moves them), one chord a bar, looped.
PROGRESSIONS = (
    "C G Am F", "C Am F G7", "Dm7 G7 Cmaj7 Cmaj7", "C F C G7", "Am F C G",
    "C7 F7 C7 C7 F7 F7 C7 C7 G7 F7 C7 G7", "Am Dm E7 Am", "C Em F G", "Cmaj7 A7 Dm7 G7",
    "F G Em Am", "Am G F E7", "C C F F G7 G7 C C", "Dm Bb C Dm", "Em C G D",
)
COMPOUND = (6, 9, 12)  # numerators over 8 counted in dotted quarters


@dataclasses.dataclass(frozen=True)
class Groove:
    """One MMA groove: its library file (the split unit), name and metre.

    `bar_quarters` is MMA's `Time` (quarters a bar), `beats_per_bar` the counted beats
    (module docstring).
    """

    family: str
    name: str
    bar_quarters: float
    beats_per_bar: int

    @property
    def quarters_per_beat(self) -> float:
        return self.bar_quarters / self.beats_per_bar


def _metre(time: float, sig: tuple[int, int]) -> int | None:
    """Beats a bar for MMA's `Time` and `TimeSig`, or None where the two disagree."""
    num, den = sig
    if den == 8 and num in COMPOUND:
        return num // 3
    if den == 4 and time == num:
        return num
    if (num, den) == (2, 2) and time == 4:  # cut time: four quarter beats as MMA plays them
        return 4
    return None


def mma_grooves(lib: Path = MMA_LIB, *, variants: bool = False) -> list[Groove]:
    """Grooves defined in MMA's library, with the metre in force at each `DefGroove`.

    Intro, ending, fill and break grooves are left out (they are a few bars that do not
    repeat) unless `variants`; so are grooves whose `Time` and `TimeSig` disagree.
    """
    out = []
    skip = re.compile(r"intro|end|fill|break", re.I)
    for path in sorted(lib.rglob("*.mma")):
        time, sig = 4.0, (4, 4)
        family = f"{path.parent.name}/{path.stem}"
        for line in path.read_text(errors="replace").splitlines():
            words = line.split("//")[0].split()
            if not words:
                continue
            head = words[0].lower()
            if head == "time" and len(words) > 1:
                try:
                    time = float(words[1])
                except ValueError:
                    pass
            elif head == "timesig" and len(words) > 1:
                parts = " ".join(words[1:3]).replace("/", " ").split()
                if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                    sig = (int(parts[0]), int(parts[1]))
            elif head == "defgroove" and len(words) > 1:
                name = words[1]
                beats = _metre(time, sig)
                if beats is None or (not variants and skip.search(name)):
                    continue
                out.append(Groove(family, name, time, beats))
    return out


def mma_song(groove: Groove, progression: str, *, beat_bpm: float, bars: int,
             transpose: int, seed: int) -> str:
    """The text of an MMA song: `bars` bars of `progression` in `groove` at `beat_bpm`
    counted beats a minute (MMA's tempo counts quarters)."""
    chords = progression.split()
    lines = [f"Tempo {beat_bpm * groove.quarters_per_beat:.4f}", f"Groove {groove.name}",
             f"RndSeed {seed}", f"Transpose {transpose}"]
    lines += [f"{i + 1} {chords[i % len(chords)]}" for i in range(bars)]
    return "\n".join(lines) + "\n"


def run_mma(song: str, workdir: Path) -> Path:
    """Write `song` and run `mma` on it; return the MIDI file.

    **Raises:** `RuntimeError` with MMA's message when it fails."""
    src = workdir / "song.mma"
    mid = workdir / "song.mid"
    src.write_text(song)
    r = subprocess.run(["mma", str(src), "-f", str(mid)], capture_output=True, text=True,
                       cwd=workdir)
    if r.returncode or not mid.exists():
        msg = (r.stdout + r.stderr).strip().splitlines()
        raise RuntimeError(f"mma failed: {msg[-1] if msg else r.returncode}")
    return mid


def mma_beats(pm, groove: Groove, bars: int) -> tuple[np.ndarray, np.ndarray]:
    """Beat times and beat-in-bar numbers of an MMA song, from its tick grid (MMA starts
    bar 1 at tick 0; `pm.resolution` ticks a quarter)."""
    n = bars * groove.beats_per_bar
    ticks = np.arange(n) * groove.quarters_per_beat * pm.resolution
    times = np.array([pm.tick_to_time(int(round(t))) for t in ticks])
    return times, np.arange(n) % groove.beats_per_bar + 1


def midi_beats(pm) -> tuple[np.ndarray, np.ndarray, float]:
    """pretty_midi's beats of a MIDI file with beat-in-bar numbers, shifted by the notes'
    constant delay from the grid where no note is on the unshifted grid.

    **Returns:** `(times, beat_in_bar, shift_s)`."""
    from nrtjax.audio.beat_eval import grid_delay  # here: nrtjax.audio loads soundfile

    beats = np.asarray(pm.get_beats())
    down = np.asarray(pm.get_downbeats())
    onsets = note_onsets(pm)
    shift = 0.0
    if onsets.size and beats.size >= 2:
        try:
            delay, at_delay, at_zero = grid_delay(onsets, beats)
        except ValueError:
            delay, at_delay, at_zero = 0.0, 0.0, 1.0
        if at_zero < 0.05 and at_delay >= 0.5:
            shift = delay
        elif beats_hit(onsets, beats) < 0.3:
            shift = lead_in(onsets, beats)
    return beats + shift, beat_numbers(beats, down), shift


def beats_hit(onsets: np.ndarray, beats: np.ndarray, *, tolerance: float = 0.02) -> float:
    """The fraction of beats with a note onset within `tolerance` s (onsets sorted)."""
    if onsets.size == 0 or beats.size == 0:
        return 0.0
    j = np.searchsorted(onsets, beats).clip(1, max(onsets.size - 1, 1))
    near = np.minimum(np.abs(onsets[j] - beats), np.abs(onsets[j - 1] - beats))
    return float(np.mean(near <= tolerance))


def lead_in(onsets: np.ndarray, beats: np.ndarray) -> float:
    """A constant delay of all notes (a converter's lead-in) that the sixteenth-grid test
    of `grid_delay` misses (triplet-based music): the shift within a 32nd note of the
    grid that puts a note on the most beats, if it puts one on at least 60 % of them;
    else 0."""
    period = float(np.median(np.diff(beats)))
    shifts = np.arange(-period / 8, period / 8, 0.001)
    hits = np.array([beats_hit(onsets, beats + d) for d in shifts])
    best = int(np.argmax(hits))
    if hits[best] < 0.6:
        return 0.0
    # Refine: the tolerance-wide plateau of shifts ties; take the median residual instead.
    b = beats + shifts[best]
    j = np.searchsorted(onsets, b).clip(1, onsets.size - 1)
    nearest = np.where(np.abs(onsets[j] - b) < np.abs(onsets[j - 1] - b), onsets[j], onsets[j - 1])
    res = nearest - b
    return float(shifts[best] + np.median(res[np.abs(res) <= 0.02]))


def beat_numbers(beats: np.ndarray, downbeats: np.ndarray) -> np.ndarray:
    """Each beat's position in its bar (1 = downbeat), given the downbeats among `beats`;
    beats before the first downbeat (a pickup) count back from the first bar's length."""
    if downbeats.size == 0:
        return np.ones(beats.size, int)
    pos = np.searchsorted(beats, downbeats - 1e-6)
    last = np.searchsorted(downbeats, beats + 1e-6, side="right") - 1
    number = np.arange(beats.size) - pos[last.clip(0)] + 1
    if pos[0] > 0:
        per_bar = int(pos[1] - pos[0]) if pos.size > 1 else int(pos[0])
        k = np.arange(pos[0])
        number[k] = np.maximum(per_bar - (pos[0] - k) + 1, 1)
    return number


def note_onsets(pm, *, drums: bool | None = None) -> np.ndarray:
    """All note-on times (sorted); `drums` True/False keeps only drum/pitched notes."""
    t = [n.start for inst in pm.instruments if drums is None or inst.is_drum == drums
         for n in inst.notes]
    return np.sort(np.asarray(t, np.float64))


def grid_fit(onsets: np.ndarray, beats: np.ndarray, *,
             tolerance: float = 0.03) -> tuple[float, float]:
    """How well notes sit on a beat grid.

    **Returns:** `(beats_hit, onsets_on_grid)`: the fraction of beats with a note onset
    within `tolerance` s, and the fraction of onsets (within the beats' span) within
    `tolerance` of a sixteenth or an eighth-triplet of the grid."""
    if beats.size < 2 or onsets.size == 0:
        return 0.0, 0.0
    j = np.searchsorted(onsets, beats).clip(1, onsets.size - 1)
    near = np.minimum(np.abs(onsets[j] - beats), np.abs(onsets[j - 1] - beats))
    hit = float(np.mean(near <= tolerance))
    p = np.diff(beats)[:, None]
    sub = np.concatenate([np.arange(4) / 4, np.arange(1, 3) / 3, np.arange(1, 6, 2) / 6])
    grid = np.sort((beats[:-1, None] + p * sub).ravel())
    on = onsets[(onsets >= beats[0] - tolerance) & (onsets < beats[-1])]
    if on.size == 0:
        return hit, 0.0
    k = np.searchsorted(grid, on).clip(1, grid.size - 1)
    d = np.minimum(np.abs(on - grid[k]), np.abs(on - grid[k - 1]))
    return hit, float(np.mean(d <= tolerance))


# --- MIDI-side augmentation ------------------------------------------------------------------


def tempo_warp(end: float, r0: float, r1: float, *, step: float = 0.25):
    """Anchor times mapping the original timeline onto one whose tempo is multiplied by a
    factor ramping linearly from `r0` (at 0) to `r1` (at `end`): new(t) = int_0^t ds / r(s).

    **Returns:** `(original_times, new_times)` for `PrettyMIDI.adjust_times` and
    `np.interp`."""
    if abs(r1 - r0) < 1e-12:
        t = np.array([0.0, end])
        return t, t / r0
    # Anchors every `step` s; between them the map is linear (its curvature over 0.25 s
    # moves a note by well under a millisecond). Notes and beats use the same anchors.
    t = np.linspace(0.0, end, max(int(np.ceil(end / step)), 2) + 1)
    r = r0 + (r1 - r0) * t / end
    # Exact integral of 1/r for linear r: (end / (r1 - r0)) * log(r(t) / r0).
    return t, end / (r1 - r0) * np.log(r / r0)


def transpose(pm, semitones: int) -> None:
    """Move every pitched (non-drum) note by `semitones`, clipped to the MIDI range."""
    for inst in pm.instruments:
        if not inst.is_drum:
            for n in inst.notes:
                n.pitch = int(np.clip(n.pitch + semitones, 0, 127))


# General MIDI percussion keys by kind: the sound `synth_drums` makes for them, and which
# `bare_drums` keeps.
DRUM_KINDS = {"kick": (35, 36), "snare": (37, 38, 40), "clap": (39,),
              "tom": (41, 43, 45, 47, 48, 50), "hat": (42, 44), "open_hat": (46,),
              "cymbal": (49, 51, 52, 53, 55, 57, 59)}
# A bare kit: kicks, side stick and snares, hand clap, toms. Hi-hats, cymbals and the rest
# of the percussion (which mark the subdivisions) are what `bare_drums` drops.
BARE_KIT = frozenset(k for kind in ("kick", "snare", "clap", "tom") for k in DRUM_KINDS[kind])


def select_stems(pm, mode: str, rng: np.random.Generator) -> str:
    """Keep all instruments, drop the drums, keep only the drums, keep only the drums'
    kick, snare, clap and toms (`bare_drums`, `BARE_KIT`), or drop one pitched instrument;
    fall back to `all` where the mode would leave nothing. Returns the mode applied."""
    drums = [i for i in pm.instruments if i.is_drum and i.notes]
    pitched = [i for i in pm.instruments if not i.is_drum and i.notes]
    if mode == "no_drums" and drums and pitched:
        pm.instruments = pitched
    elif mode == "drums_only" and drums:
        pm.instruments = drums
    elif mode == "bare_drums" and sum(n.pitch in BARE_KIT for i in drums for n in i.notes) >= 8:
        for i in drums:
            i.notes = [n for n in i.notes if n.pitch in BARE_KIT]
        pm.instruments = [i for i in drums if i.notes]
    elif mode == "drop_one" and len(pitched) >= 2:
        gone = pitched[int(rng.integers(len(pitched)))]
        pm.instruments = [i for i in pm.instruments if i is not gone]
    else:
        return "all"
    return mode


def free_time_notes(pm, start: float, stop: float, rng: np.random.Generator) -> None:
    """Replace the music in [start, stop) by notes in free time (no beat): notes starting
    there are removed, notes sounding into it are cut at `start`, and a pad or piano
    instrument plays sustained notes at irregular (exponentially spaced) times."""
    import pretty_midi

    silence_notes(pm, start, stop)
    program = int(rng.choice([0, 4, 19, 48, 49, 52, 88, 89, 91, 92, 94, 95]))
    inst = pretty_midi.Instrument(program=program, name="free time")
    t = start + rng.exponential(0.5)
    while t < stop - 0.3:
        dur = float(rng.uniform(0.8, 4.0))
        for pitch in rng.integers(48, 80, size=int(rng.integers(1, 4))):
            inst.notes.append(pretty_midi.Note(velocity=int(rng.integers(40, 100)),
                                               pitch=int(pitch), start=float(t),
                                               end=float(min(t + dur, stop))))
        t += float(rng.exponential(1.2)) + 0.15
    pm.instruments.append(inst)


def silence_notes(pm, start: float, stop: float) -> None:
    """Remove every note in [start, stop) (and cut the ones sounding into it)."""
    for inst in pm.instruments:
        kept = []
        for n in inst.notes:
            if start <= n.start < stop:
                continue
            if n.start < start < n.end:
                n.end = start
            kept.append(n)
        inst.notes = kept


# --- rendering and audio-side augmentation ---------------------------------------------------


def constant_tempo(pm, *, resolution: int = 960):
    """The same notes, controllers and programs on a single-tempo timeline (120 BPM,
    `resolution` ticks a quarter: 0.5 ms a tick).

    fluidsynth's MIDI player applies a tempo change at the start of its next audio buffer,
    not at the change's own tick, so a file with many tempo events (a tempo ramp, or
    `PrettyMIDI.adjust_times`) drifts from the times pretty_midi reads from it: tens of
    ms after a few seconds. Without tempo events the rendered notes sit where the
    annotation says, up to the player's buffer (64 samples)."""
    import copy

    import pretty_midi

    out = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=120.0)
    out.instruments = [copy.deepcopy(inst) for inst in pm.instruments]
    return out


def render(pm, soundfont: str, sr: int, *, gain: float = 0.4, reverb: bool = False,
           chorus: bool = False, workdir: Path | None = None) -> np.ndarray:
    """Render a PrettyMIDI with fluidsynth; mono float32 at `sr`.

    **Raises:** `RuntimeError` naming fluidsynth's message when it fails."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(dir=workdir) as d:
        mid, wav = Path(d) / "x.mid", Path(d) / "x.wav"
        pm.write(str(mid))
        cmd = ["fluidsynth", "-ni", "-q", "-g", f"{gain:.3f}", "-r", str(sr),
               "-R", str(int(reverb)), "-C", str(int(chorus)), "-F", str(wav), soundfont, str(mid)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode or not wav.exists():
            raise RuntimeError(f"fluidsynth failed on {soundfont}: {r.stderr.strip()[-300:]}")
        audio, file_sr = sf.read(str(wav), dtype="float32", always_2d=True)
    if file_sr != sr:
        raise RuntimeError(f"fluidsynth wrote {file_sr} Hz instead of {sr} Hz.")
    return audio.mean(axis=1)


def _decay(n: int, sr: int, tau: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau * sr))


def _filtered_noise(n: int, sr: int, rng: np.random.Generator, lo: float | None,
                    hi: float | None) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    w = rng.standard_normal(n)
    if lo and hi:
        return sosfilt(butter(2, [lo, hi], "bandpass", fs=sr, output="sos"), w)
    if lo:
        return sosfilt(butter(4, lo, "highpass", fs=sr, output="sos"), w)
    return w


def drum_sound(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One synthesised drum hit of a drum machine's kind (`DRUM_KINDS`; any other key gets
    a short tuned blip or band of noise), its parameters drawn from `rng`, peak 1.

    Kick and toms: a sine whose pitch falls exponentially to its rest pitch (30 % of kicks:
    a steady 45-90 Hz sine decaying in 20-250 ms, a sub kick); snare: a tone
    plus band-passed noise; clap: three or four noise bursts a few ms apart and a tail;
    hats and cymbals: high-passed noise (closed 20-70 ms, open 150-400 ms, cymbals
    0.4-1.5 s)."""
    t = lambda s: np.arange(int(s * sr)) / sr  # noqa: E731
    if kind == "kick" and rng.random() < 0.3:  # a steady low sine (a sub kick, as an 808's)
        tau = rng.uniform(0.02, 0.25)
        tt = t(min(5 * tau, 1.0))
        x = np.sin(2 * np.pi * rng.uniform(45, 90) * tt) * _decay(tt.size, sr, tau)
    elif kind in ("kick", "tom"):
        f1 = rng.uniform(40, 70) if kind == "kick" else rng.uniform(80, 300)
        f0 = f1 * rng.uniform(1.5, 4.0)
        length = rng.uniform(0.12, 0.5)
        tt = t(length)
        f = f1 + (f0 - f1) * np.exp(-tt / rng.uniform(0.01, 0.06))
        x = np.sin(2 * np.pi * np.cumsum(f) / sr) * _decay(tt.size, sr, length / 4)
        if rng.random() < 0.5:  # a beater click
            k = int(0.003 * sr)
            x[:k] += rng.uniform(0.1, 0.5) * rng.standard_normal(k)
    elif kind == "snare":
        n = int(rng.uniform(0.12, 0.35) * sr)
        tone = np.sin(2 * np.pi * rng.uniform(150, 280) * np.arange(n) / sr)
        noise = _filtered_noise(n, sr, rng, rng.uniform(800, 2500), rng.uniform(6000, 10000))
        noise /= np.max(np.abs(noise)) + 1e-12
        mix = rng.uniform(0.2, 0.8)
        x = (mix * tone * _decay(n, sr, rng.uniform(0.02, 0.06))
             + (1 - mix) * noise * _decay(n, sr, rng.uniform(0.04, 0.12)))
    elif kind == "clap":
        n = int(0.3 * sr)
        env = np.zeros(n)
        gap = rng.uniform(0.006, 0.014)
        for j in range(int(rng.integers(3, 5))):
            i = int(j * gap * sr)
            env[i:] = np.maximum(env[i:], _decay(n - i, sr, 0.004))
        env = np.maximum(env, 0.5 * _decay(n, sr, rng.uniform(0.04, 0.12)))
        x = env * _filtered_noise(n, sr, rng, rng.uniform(700, 1200), rng.uniform(2000, 4000))
    elif kind in ("hat", "open_hat", "cymbal"):
        tau = {"hat": (0.02, 0.07), "open_hat": (0.15, 0.4), "cymbal": (0.4, 1.5)}[kind]
        length = rng.uniform(*tau)
        n = int(min(4 * length, 3.0) * sr)
        x = _filtered_noise(n, sr, rng, rng.uniform(5000, 9000), None) * _decay(n, sr, length / 3)
    elif rng.random() < 0.5:  # other percussion: a tuned blip ...
        n = int(rng.uniform(0.05, 0.2) * sr)
        x = np.sin(2 * np.pi * rng.uniform(300, 2000) * np.arange(n) / sr) * _decay(n, sr, n / sr / 4)
    else:  # ... or a short band of noise
        n = int(rng.uniform(0.03, 0.15) * sr)
        lo = rng.uniform(500, 5000)
        x = _filtered_noise(n, sr, rng, lo, min(lo * rng.uniform(1.5, 3.0), 0.45 * sr))
        x *= _decay(n, sr, n / sr / 4)
    return (x / (np.max(np.abs(x)) + 1e-12)).astype(np.float32)


def synth_drums(notes: list[tuple[float, int, int]], n: int, sr: int,
                rng: np.random.Generator) -> np.ndarray:
    """The drum notes `(start_s, key, velocity)` played by a drum machine drawn from `rng`
    (one `drum_sound` per key and its level), `n` samples at `sr`; each hit starts at its
    note's start sample, so the beats stay where the annotation says."""
    kind = {k: name for name, keys in DRUM_KINDS.items() for k in keys}
    sounds, levels = {}, {}
    x = np.zeros(n, np.float32)
    for start, key, velocity in sorted(notes):
        if key not in sounds:
            sounds[key] = drum_sound(kind.get(key, "other"), sr, rng)
            levels[key] = 10 ** (rng.uniform(-9, 0) / 20)
        i = int(round(start * sr))
        if not 0 <= i < n:
            continue
        snd = sounds[key][: n - i]
        x[i:i + snd.size] += levels[key] * (velocity / 127) ** 1.5 * snd
    return x


def equalise(x: np.ndarray, sr: int, kind: str,
             rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Zero-phase Butterworth filtering (no time shift): lowpass, highpass, band
    (telephone-like) or none."""
    from scipy.signal import butter, sosfiltfilt

    if kind == "lowpass":
        fc = float(rng.uniform(1500, 8000))
        sos = butter(4, fc, "lowpass", fs=sr, output="sos")
        return sosfiltfilt(sos, x).astype(np.float32), {"eq": kind, "fc": fc}
    if kind == "highpass":
        fc = float(rng.uniform(60, 500))
        sos = butter(2, fc, "highpass", fs=sr, output="sos")
        return sosfiltfilt(sos, x).astype(np.float32), {"eq": kind, "fc": fc}
    if kind == "band":
        lo, hi = float(rng.uniform(200, 400)), float(rng.uniform(3000, 5000))
        sos = butter(2, [lo, hi], "bandpass", fs=sr, output="sos")
        return sosfiltfilt(sos, x).astype(np.float32), {"eq": kind, "lo": lo, "hi": hi}
    return x, {"eq": "none"}


def add_reverb(x: np.ndarray, sr: int, rt60: float, wet: float,
               rng: np.random.Generator) -> np.ndarray:
    """Convolve with exponentially decaying noise (decay `rt60` s, 60 dB), mixed `wet`
    with the dry signal; the direct path stays at lag 0, so no beat moves."""
    from scipy.signal import fftconvolve

    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * 10 ** (-3 * t / rt60)
    ir[: int(0.005 * sr)] = 0.0  # early reflections start after 5 ms
    ir /= np.sqrt(np.sum(ir**2)) + 1e-12
    tail = fftconvolve(x, ir)[: x.size]
    return ((1 - wet) * x + wet * tail).astype(np.float32)


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise of unit RMS."""
    from scipy.fft import irfft, next_fast_len, rfft

    m = next_fast_len(n, real=True)  # an FFT of a large prime length takes seconds
    w = rng.standard_normal(m)
    if colour != "white":
        spec = rfft(w)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (0.5 if colour == "pink" else 1.0)
        w = irfft(spec, m)
    w = w[:n]
    return w / (np.sqrt(np.mean(w**2)) + 1e-12)


def write_beats(path: Path, times: np.ndarray, numbers: np.ndarray) -> None:
    """madmom's `.beats` text: one `time_s beat_in_bar` line a beat (1 = downbeat)."""
    path.write_text("".join(f"{t:.6f} {int(b)}\n" for t, b in zip(times, numbers)))


def read_beats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a `.beats` file: `(times, beat_in_bar)`; an empty file has no beats.

    **Raises:** `ValueError` naming the file and line for a malformed or unsorted one."""
    times, numbers = [], []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            t, b = float(parts[0]), int(parts[1]) if len(parts) > 1 else 0
        except (ValueError, IndexError):
            raise ValueError(f"{path}:{i}: expected 'time_s beat_in_bar', got {line!r}.") from None
        if not math.isfinite(t):
            raise ValueError(f"{path}:{i}: beat time is not finite.")
        times.append(t)
        numbers.append(b)
    t = np.asarray(times, np.float64)
    if np.any(np.diff(t) <= 0):
        raise ValueError(f"{path}: beat times must increase.")
    return t, np.asarray(numbers, int)


_LICENCE_WORDS = (  # free-text copyright files: the licences they name
    (r"MIT licen[cs]e", "MIT"), (r"GNU General Public License,? (version )?2", "GPL-2"),
    (r"GNU General Public License,? (version )?3", "GPL-3"),
    (r"GNU Lesser General Public License", "LGPL"),
    (r"creativecommons.org/licenses/by/3.0", "CC-BY-3.0"),
    (r"provided 'as-is', without any express or implied", "zlib-style"),
    (r"Permission is hereby granted, free of charge", "MIT"),
)


def licence(package: str) -> str:
    """The licences named in /usr/share/doc/PKG/copyright (its `License:` lines, or the
    licences a free-text file names), followed by the file's path; for `"music21"` (a
    PyPI source, not a Debian package) [`nrtjax.beats.scores.licence`][]."""
    if package == "music21":
        from .scores import licence as music21_licence

        return music21_licence()
    path = Path("/usr/share/doc") / package / "copyright"
    if not path.exists():
        return f"unknown (no {path})"
    text = path.read_text(errors="replace")
    names = []
    for line in text.splitlines():
        if line.startswith(("License:", "Licence:")):
            name = line.split(":", 1)[1].strip()
            if name and name not in names:
                names.append(name)
    if not names:
        names = [n for pat, n in _LICENCE_WORDS if re.search(pat, text, re.I)]
    return f"{', '.join(names) or 'see'} ({path})"


def missing_tools() -> list[str]:
    """Debian packages the builder needs that are not installed (by the tools they give)."""
    need = {"mma": "mma", "fluidsynth": "fluidsynth"}
    out = [pkg for tool, pkg in need.items() if shutil.which(tool) is None]
    out += [pkg for path, pkg in SOUNDFONTS.values() if not Path(path).exists()]
    out += [pkg for pkg, d in MIDI_SOURCES.items() if pkg != "mma" and not d.exists()]
    return sorted(set(out))


# --- one item --------------------------------------------------------------------------------


def load_source(source: dict, workdir: Path):
    """The source piece as PrettyMIDI with its beat times and beat-in-bar numbers.

    MMA grooves are written as a song long enough for a 40 s clip plus an offset."""
    import warnings

    import pretty_midi

    with warnings.catch_warnings():  # pretty_midi warns about meta events on other tracks
        warnings.simplefilter("ignore")
        return _load_source(source, workdir, pretty_midi)


def _load_source(source: dict, workdir: Path, pretty_midi):
    if source["kind"] == "mma":
        g = Groove(**source["groove"])
        bpm = source["beat_bpm"]
        bars = int(np.ceil(70.0 * bpm / 60.0 / g.beats_per_bar)) + 1
        song = mma_song(g, PROGRESSIONS[source["progression"]], beat_bpm=bpm, bars=bars,
                        transpose=0, seed=int(source.get("seed", 1)))
        pm = pretty_midi.PrettyMIDI(str(run_mma(song, workdir)))
        beats, numbers = mma_beats(pm, g, bars)
        return pm, beats, numbers, 0.0
    try:
        pm = pretty_midi.PrettyMIDI(source["path"])
    except Exception as e:  # corrupt MIDI: pretty_midi/mido raise many kinds
        raise RuntimeError(f"cannot read {source['path']}: {e}") from None
    beats, numbers, shift = midi_beats(pm)
    return pm, beats, numbers, shift


def make_item(spec: dict, directory: Path, sr: int) -> dict:
    """Build one planned item (see experiments/beat_data.py `plan_item`): MIDI changes,
    render, crop, audio changes; write `NAME.flac` and `NAME.beats` atomically.

    **Returns:** its manifest record, or `{"rejected": reason}` when the notes do not sit
    on the beat grid (or the clip is too short or silent)."""
    import soundfile as sf

    from nrtjax.io import atomic_path

    name = spec["name"]
    flac, beats_path = directory / f"{name}.flac", directory / f"{name}.beats"
    record_path = directory / f"{name}.json"
    if flac.exists() and beats_path.exists() and record_path.exists():
        import json

        record = json.loads(record_path.read_text())
        if record.get("spec") == spec:
            return record
    rng = np.random.default_rng(spec["audio_seed"])
    with tempfile.TemporaryDirectory() as d:
        pm, beats, numbers, shift = load_source(spec["source"], Path(d))
        # MIDI-side: tempo scale and ramp over the whole piece.
        end = pm.get_end_time() + 1.0
        orig, new = tempo_warp(end, spec["tempo"]["r0"], spec["tempo"]["r1"])
        pm.adjust_times(orig, new)
        beats = np.interp(beats, orig, new)
        onsets = note_onsets(pm)
        if onsets.size == 0:
            return {"rejected": "no notes"}
        last = onsets[-1]
        keep = beats <= last + 1e-6
        beats, numbers = beats[keep], numbers[keep]
        # A piece shorter than the clip gives a shorter clip (down to 15 s), never silence.
        clip = min(spec["clip_s"], round(last + 1.0, 3))
        if clip < min(15.0, spec["clip_s"]):
            return {"rejected": f"piece too short ({last:.1f} s of notes)"}
        room = max(0.0, min(last, beats[-1] if beats.size else 0.0) - clip)
        offset = spec["offset_u"] * room
        stop = offset + clip
        inside = (beats >= offset) & (beats < stop)
        tol = 0.035 if spec["source"]["kind"] == "mma" else 0.03
        on = onsets[(onsets >= offset - 0.05) & (onsets < stop)]
        hit, on_grid = grid_fit(on, beats[inside], tolerance=tol)
        need = (0.75, 0.7) if spec["source"]["kind"] == "mma" else (0.5, 0.6)
        if np.sum(inside & (beats >= offset + 5.0)) < 8:
            return {"rejected": f"fewer than 8 beats after 5 s in the clip ({last:.1f} s of notes)"}
        if hit < need[0] or on_grid < need[1]:
            return {"rejected": f"notes off the beat grid: {hit:.2f} of beats with a note, "
                                f"{on_grid:.2f} of notes on the grid"}
        transpose(pm, spec["transpose"])
        stems = select_stems(pm, spec["stems"], rng)
        neg = spec["negative"]
        gone = np.zeros(beats.size, bool)
        if neg is not None:
            a = offset + neg["start_u"] * max(clip - neg["length_s"], 0.0)
            b = a + neg["length_s"]
            (free_time_notes(pm, a, b, rng) if neg["kind"] == "free" else silence_notes(pm, a, b))
            gone = (beats >= a) & (beats < b)
        for inst in pm.instruments:  # nothing after the clip needs rendering
            inst.notes = [n for n in inst.notes if n.start < stop]
        hits = []
        if spec.get("synth_drums"):  # the drums from a drum machine, not the soundfont
            hits = [(n.start, n.pitch, n.velocity) for i in pm.instruments if i.is_drum
                    for n in i.notes]
            pm.instruments = [i for i in pm.instruments if not i.is_drum]
        fl = spec["fluid"]
        pm = constant_tempo(pm)
        if any(i.notes for i in pm.instruments):
            audio = render(pm, SOUNDFONTS[spec["soundfont"]][0], sr, gain=fl["gain"],
                           reverb=fl["reverb"], chorus=fl["chorus"], workdir=Path(d))
        else:
            audio = np.zeros(0, np.float32)
    i0, n = int(round(offset * sr)), int(round(clip * sr))
    if hits:
        audio = np.pad(audio, (0, max(0, i0 + n - audio.size)))
        sd = spec["synth_drums"]
        drums = synth_drums(hits, audio.size, sr, np.random.default_rng(sd["seed"]))
        rms_p = float(np.sqrt(np.mean(audio[i0:i0 + n] ** 2)))
        rms_d = float(np.sqrt(np.mean(drums[i0:i0 + n] ** 2)))
        if rms_d > 0:
            level = rms_p * 10 ** (sd["level_db"] / 20) if rms_p > 1e-4 else 0.1
            audio = audio + drums * (level / rms_d)
    x = np.zeros(n, np.float32)
    seg = audio[i0:i0 + n]
    x[: seg.size] = seg
    rms = float(np.sqrt(np.mean(x**2)))
    if rms < 1e-4 and (neg is None or neg["length_s"] < clip):
        return {"rejected": f"silent render ({spec['soundfont']}, stems {stems})"}
    x, eq = equalise(x, sr, spec["eq"], np.random.default_rng(spec["eq_seed"]))
    if spec["reverb"]:
        x = add_reverb(x, sr, spec["reverb"]["rt60"], spec["reverb"]["wet"], rng)
    if spec["noise"]:
        level = max(rms, 1e-3) * 10 ** (-spec["noise"]["snr_db"] / 20)
        x = x + (level * coloured_noise(n, spec["noise"]["colour"], rng)).astype(np.float32)
    peak = float(np.max(np.abs(x)))
    if peak > 0:
        x = x * (10 ** (spec["peak_dbfs"] / 20) / peak)
    sel = inside & ~gone
    t, num = beats[sel] - offset, numbers[sel]
    with atomic_path(flac) as tmp:
        sf.write(str(tmp), x.astype(np.float32), sr, subtype="PCM_16", format="FLAC")
    with atomic_path(beats_path) as tmp:
        write_beats(tmp, t, num)
    src = spec["source"]
    piece = (f"mma:{src['groove']['family']}:{src['groove']['name']}:p{src['progression']}"
             if src["kind"] == "mma" else src["family"])
    record = {
        "name": name, "split": spec["split"], "audio": f"{spec['split']}/{name}.flac",
        "beats": f"{spec['split']}/{name}.beats", "piece": piece,
        "family": src["groove"]["family"] if src["kind"] == "mma" else src["family"],
        "package": src["package"], "soundfont": spec["soundfont"],
        "duration_s": clip, "offset_s": round(offset, 4), "n_beats": int(t.size),
        "beats_per_bar": int(np.max(num)) if num.size else 0,
        "tempo_bpm": round(float(60 / np.median(np.diff(t))), 3) if t.size > 1 else 0.0,
        "grid_shift_s": shift, "beats_with_note": round(hit, 3),
        "notes_on_grid": round(on_grid, 3), "stems": stems, "eq": eq, "spec": spec,
    }
    with atomic_path(record_path) as tmp:
        import json

        tmp.write_text(json.dumps(record))
    return record
