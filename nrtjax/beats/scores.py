"""Scores from music21's corpus as MIDI files with exact beats, for the beat corpus.

The `music21` wheel on PyPI ships a corpus of encoded scores (Bach chorales, string
quartets by Haydn, Mozart and Beethoven, piano and song literature, Monteverdi madrigals,
and thousands of folk tunes in ABC: Ryan's Mammoth Collection, O'Neill's 1850, Aird's
Airs, the Nottingham dataset with chord symbols). They broaden the corpus beyond MMA's
grooves and game music: no drums, classical voice leading, solo melodies, compound metres.

Each score becomes one MIDI file at a constant tempo drawn from its name, with its one
time signature at tick 0, so `pretty_midi`'s beats are the score's beats (the corpus
convention: quarter beats in 2/4, 3/4, 4/4 and 2/2 (written 4/4); dotted-quarter beats in
6/8, 9/8, 12/8). A pickup bar is padded to a full bar, so beat 1 of bar 1 falls on a
downbeat. Chord symbols are played (chord on each beat, root in the bass on the bar's
first beat). Notes get a small random timing jitter (a player's, not the grid's: the
`.beats` stay exact) and velocity spread. Scores with more than one time signature, other
metres, or fewer than eight bars are skipped. music21 is needed only to build the corpus
(`nrtjax beat_data` installs it); nothing here is downloaded.
"""

import hashlib
import os
from pathlib import Path

import numpy as np


# Collection (folder in music21's corpus) -> most scores taken from it. Renaissance and
# medieval collections (Palestrina, Josquin, trecento) are left out: their notated
# breves and mensural metres have no quarter-note beat convention.
COLLECTIONS = {
    "bach": 200, "ryansMammoth": 300, "oneills1850": 150, "airdsAirs": 100,
    "nottingham-dataset": 50, "essenFolksong": 60, "beethoven": 30, "mozart": 20,
    "haydn": 12, "monteverdi": 40, "schumann_robert": 10, "schumann_clara": 6,
    "leadSheet": 4, "joplin": 2, "chopin": 2, "schubert": 2, "handel": 2, "corelli": 2,
    "cpebach": 2, "weber": 2, "verdi": 2, "beach": 2, "liliuokalani": 2, "johnson_j_r": 2,
    "miscFolk": 4,
}
OPUS_FILES = 2  # ABC books with many tunes each (slow to parse): files read per collection
METRES = {  # time signature -> (written numerator, denominator, quarters a beat)
    "2/4": (2, 4, 1.0), "3/4": (3, 4, 1.0), "4/4": (4, 4, 1.0), "2/2": (4, 4, 1.0),
    "6/8": (6, 8, 1.5), "9/8": (9, 8, 1.5), "12/8": (12, 8, 1.5),
}
SOLO = (0, 6, 11, 21, 22, 24, 40, 68, 71, 73, 78, 105)  # GM programs for a melody alone
ENSEMBLES = ((40, 40, 41, 42), (0, 0, 0, 0), (19, 19, 19, 19), (52, 52, 53, 52),
             (73, 68, 71, 70), (56, 56, 61, 58), (6, 6, 6, 6), (24, 24, 25, 32))
VERSION = 1  # bump when the conversion changes: the cached MIDI folder is rebuilt


def _seed(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:12], 16)


def score_to_midi(score, name: str, *, tempo_range: tuple[float, float] = (60.0, 160.0)):
    """One music21 score as PrettyMIDI (module docstring), its choices drawn from `name`.

    **Returns:** the PrettyMIDI object.

    **Raises:** `ValueError` naming why the score is skipped (metre, length, no notes).
    """
    import music21 as m21
    import pretty_midi

    sigs = {ts.ratioString for ts in score.recurse().getElementsByClass(m21.meter.TimeSignature)}
    if len(sigs) != 1 or next(iter(sigs)) not in METRES:
        raise ValueError(f"time signatures {sorted(sigs)}: one of {sorted(METRES)} needed")
    num, den, q_per_beat = METRES[next(iter(sigs))]
    parts = [p for p in score.parts if p.flatten().notes]
    if not parts:
        raise ValueError("no notes")
    measures = parts[0].getElementsByClass(m21.stream.Measure)
    if len(measures) < 8:
        raise ValueError(f"{len(measures)} bars: at least 8 needed")
    bar_q = num * (4.0 / den)
    first = measures.first()
    pad = float(first.paddingLeft or 0.0)
    if pad == 0.0 and first.duration.quarterLength < bar_q - 1e-6:
        pad = bar_q - float(first.duration.quarterLength)
    rng = np.random.default_rng(_seed(name))
    lo, hi = tempo_range
    beat_bpm = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    spq = 60.0 / (beat_bpm * q_per_beat)  # seconds a quarter note
    jitter = float(rng.uniform(0.0, 0.008))
    loud = float(rng.uniform(70, 100))
    if len(parts) == 1:
        programs = [int(rng.choice(SOLO))]
    else:
        ens = ENSEMBLES[int(rng.integers(len(ENSEMBLES)))]
        programs = [ens[min(i, len(ens) - 1)] for i in range(len(parts))]

    def note(pitch, q0, q1, vel):
        t0 = (q0 + pad) * spq + float(np.clip(rng.normal(0, jitter), -0.02, 0.02))
        t1 = (q1 + pad) * spq
        return pretty_midi.Note(velocity=int(np.clip(vel + rng.normal(0, 8), 20, 127)),
                                pitch=int(np.clip(pitch, 0, 127)), start=max(t0, 0.0),
                                end=max(t1 * 0.98, t0 + 0.03))

    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0 / spq)
    pm.time_signature_changes = [pretty_midi.TimeSignature(num, den, 0.0)]
    symbols = []
    for part, program in zip(parts, programs):
        inst = pretty_midi.Instrument(program=program)
        for el in part.stripTies().flatten().notes:
            if isinstance(el, m21.harmony.Harmony):
                symbols.append((float(el.offset), el))
                continue
            q = float(el.quarterLength)
            if q <= 0 or not getattr(el, "pitches", ()):
                continue
            for p in el.pitches:
                inst.notes.append(note(p.midi, float(el.offset), float(el.offset) + q, loud))
        if inst.notes:
            pm.instruments.append(inst)
    if symbols:
        pm.instruments += _accompaniment(symbols, parts[0].highestTime, q_per_beat, bar_q,
                                         note, loud, rng)
    if not any(i.notes for i in pm.instruments):
        raise ValueError("no notes")
    return pm


def _accompaniment(symbols, end_q, q_per_beat, bar_q, note, loud, rng):
    """Chord symbols played: the chord on every beat, its root in the bass on each bar's
    first beat, each held until the next symbol."""
    import pretty_midi

    chords = pretty_midi.Instrument(program=int(rng.choice([0, 4, 24, 25])))
    bass = pretty_midi.Instrument(program=int(rng.choice([32, 33, 34])))
    symbols.sort(key=lambda s: s[0])
    for k, (q0, cs) in enumerate(symbols):
        q1 = symbols[k + 1][0] if k + 1 < len(symbols) else end_q
        pitches = [p.midi for p in cs.pitches]
        if not pitches or q1 <= q0:
            continue
        root = cs.root().midi if cs.root() is not None else pitches[0]
        voiced = sorted({60 + (p - 60) % 12 for p in pitches})
        beat = q0
        while beat < q1 - 1e-6:
            stop = min(beat + q_per_beat, q1)
            chords.notes += [note(p, beat, stop, loud * 0.7) for p in voiced]
            if abs((beat / bar_q) - round(beat / bar_q)) < 1e-6 or beat == q0:
                bass.notes.append(note(36 + (root - 36) % 12, beat, stop, loud * 0.8))
            beat += q_per_beat
    return [i for i in (chords, bass) if i.notes]


def _scores(path: Path):
    """`(suffix, score)` for each score in a corpus file (an ABC book gives many)."""
    import music21 as m21

    parsed = m21.converter.parse(path)
    if isinstance(parsed, m21.stream.Opus):
        for k, s in enumerate(parsed.scores):
            yield f"#{k:03d}", s
    else:
        yield "", parsed


def licence() -> str:
    """The licence of music21 and of its corpus's encodings (the source's entry in a
    corpus manifest; `nrtjax.beats.corpus.licence("music21")` gives it)."""
    import music21

    return (f"BSD-3-Clause (music21 {music21.__version__}); the corpus's encodings are public "
            "domain or licensed for use, some non-commercial only (music21/corpus/license.txt)")


def export(folder: str | Path, *, progress: bool = True) -> dict:
    """Write the chosen scores of music21's corpus as MIDI files under `folder`
    (`COLLECTION/FILE[#k].mid`, each written atomically); a folder with a finished
    `index.json` of this `VERSION` is reused as it is.

    **Returns:** the index: `{"version", "music21", "written": [...], "skipped": {name: why}}`.
    """
    import json
    import warnings

    import music21 as m21
    from music21 import corpus
    from tqdm.auto import tqdm

    from nrtjax.io import atomic_path, write_json

    folder = Path(folder)
    index_path = folder / "index.json"
    if index_path.exists():
        index = json.loads(index_path.read_text())
        if index.get("version") == VERSION:
            return index
    paths = sorted(corpus.getPaths(), key=str)
    written, skipped = [], {}
    bar = tqdm(total=sum(COLLECTIONS.values()), desc="music21 scores", disable=not progress)
    for collection, cap in COLLECTIONS.items():
        files = [p for p in paths if f"/corpus/{collection}/" in str(p).replace(os.sep, "/")
                 and p.suffix in (".mxl", ".xml", ".musicxml", ".abc", ".krn")]
        # One encoding per work (Beethoven ships .krn and .mxl of the same movement).
        by_stem = {}
        for p in files:
            key = p.with_suffix("")
            if key not in by_stem or p.suffix in (".mxl", ".xml"):
                by_stem[key] = p
        files = [by_stem[k] for k in sorted(by_stem, key=str)]
        opus_read, taken = 0, 0
        for p in files:
            if taken >= cap:
                break
            rel = str(p).replace(os.sep, "/").split("/corpus/", 1)[1].rsplit(".", 1)[0]
            if p.suffix == ".abc" and opus_read >= OPUS_FILES and collection in (
                    "oneills1850", "airdsAirs", "essenFolksong"):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = list(_scores(p))
            except Exception as e:  # music21 raises many kinds on encodings it cannot read
                skipped[rel] = f"music21 cannot parse it ({type(e).__name__})"
                continue
            opus_read += len(scores) > 1
            for suffix, score in scores:
                if taken >= cap:
                    break
                name = rel + suffix
                try:
                    pm = score_to_midi(score, name)
                except ValueError as e:
                    skipped[name] = str(e)
                    continue
                except m21.Music21Exception as e:
                    skipped[name] = f"music21: {e}"
                    continue
                out = folder / f"{name}.mid"
                out.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(out) as tmp:
                    pm.write(str(tmp))
                written.append(name)
                taken += 1
                bar.update(1)
    bar.close()
    index = {"version": VERSION, "music21": m21.__version__, "written": written,
             "skipped": skipped}
    write_json(index_path, index)
    return index
