"""Scores from music21's corpus as beat-annotated MIDI (nrtjax.beats.scores).

The oracle is the score itself: a note at quarter-note offset q in a piece with a pickup
of p quarters sounds at (q + p) * 60 / (quarter notes a minute), within the stated timing
jitter, and pretty_midi's beats of the written MIDI are the metre's beats (dotted quarters
in 6/8) with the first full bar's first note on a downbeat.
"""

import numpy as np
import pytest

music21 = pytest.importorskip("music21")

from nrtjax.beats import scores  # noqa: E402


def tune(sig: str, pickup: float, bars: int = 9, chords: bool = False):
    """A one-part score: a pickup of `pickup` quarters, then `bars` full bars of eighths."""
    m21 = music21
    ts = m21.meter.TimeSignature(sig)
    bar_q = ts.barDuration.quarterLength
    part = m21.stream.Part()
    pitches = [60, 62, 64, 65, 67, 69, 71, 72]
    for b in range(bars + (pickup > 0)):
        m = m21.stream.Measure(number=b)
        if b == 0:
            m.insert(0, ts)
        length = pickup if (pickup > 0 and b == 0) else bar_q
        if chords and not (pickup > 0 and b == 0):
            m.insert(0, m21.harmony.ChordSymbol("C" if b % 2 else "G7"))
        for k in range(int(round(length / 0.5))):
            m.append(m21.note.Note(pitches[(b + k) % 8], quarterLength=0.5))
        if pickup > 0 and b == 0:
            m.paddingLeft = bar_q - pickup
        part.append(m)
    score = m21.stream.Score()
    score.insert(0, part)
    return score


def onsets(pm):
    return np.sort([n.start for i in pm.instruments for n in i.notes])


@pytest.mark.parametrize("sig, pickup, q_per_beat, per_bar",
                         [("6/8", 0.5, 1.5, 2), ("3/4", 1.0, 1.0, 3), ("4/4", 0.0, 1.0, 4),
                          ("2/2", 2.0, 1.0, 4)])
def test_beats_and_notes_follow_the_score(sig, pickup, q_per_beat, per_bar):
    pm = scores.score_to_midi(tune(sig, pickup), f"test/{sig}")
    spq = 60.0 / pm.get_tempo_changes()[1][0]
    beats, down = pm.get_beats(), pm.get_downbeats()
    np.testing.assert_allclose(np.diff(beats), q_per_beat * spq, rtol=1e-6)
    np.testing.assert_allclose(np.diff(down), per_bar * q_per_beat * spq, rtol=1e-6)
    bar_q = per_bar * q_per_beat
    pad = bar_q - pickup if pickup else 0.0
    # every eighth of the score, shifted by the padding, within the jitter bound (20 ms)
    n_eighths = int(round((pickup + 9 * bar_q) / 0.5))
    want = (pad + 0.5 * np.arange(n_eighths)) * spq
    got = onsets(pm)
    assert got.size == want.size
    assert np.max(np.abs(got - want)) <= 0.02 + 1e-9
    # the first full bar starts on a downbeat
    assert np.min(np.abs(down - bar_q * spq)) < 1e-6
    lo, hi = 60.0, 160.0  # the default tempo range, in beats a minute
    assert lo - 1e-9 <= 60.0 / (q_per_beat * spq) <= hi + 1e-9


def test_chord_symbols_are_played_on_the_beats():
    pm = scores.score_to_midi(tune("4/4", 0.0, chords=True), "test/chords")
    spq = 60.0 / pm.get_tempo_changes()[1][0]
    assert len(pm.instruments) == 3  # melody, chords, bass
    chord_on = np.array([n.start for n in pm.instruments[1].notes])
    beats = pm.get_beats()
    dist = np.abs(chord_on[:, None] - beats[None])
    assert np.all(dist.min(axis=1) <= 0.02 + 1e-9)  # on a beat, within the jitter
    assert np.unique(dist.argmin(axis=1)).size == 9 * 4  # a chord on every beat of 9 bars
    bass = np.array([n.start for n in pm.instruments[2].notes])
    assert np.all(np.abs((bass / spq / 4) - np.round(bass / spq / 4)) * 4 * spq <= 0.025)


def test_same_name_same_midi():
    a = scores.score_to_midi(tune("3/4", 1.0), "x/a")
    b = scores.score_to_midi(tune("3/4", 1.0), "x/a")
    c = scores.score_to_midi(tune("3/4", 1.0), "x/b")
    np.testing.assert_array_equal(onsets(a), onsets(b))
    assert not np.array_equal(onsets(a), onsets(c))


@pytest.mark.parametrize("sig", ["5/4", "3/2"])
def test_other_metres_are_skipped(sig):
    with pytest.raises(ValueError, match="time signatures"):
        scores.score_to_midi(tune(sig, 0.0), "x")


def test_a_metre_change_or_a_short_piece_is_skipped():
    s = tune("4/4", 0.0)
    s.parts[0].getElementsByClass("Measure")[4].insert(0, music21.meter.TimeSignature("3/4"))
    with pytest.raises(ValueError, match="time signatures"):
        scores.score_to_midi(s, "x")
    with pytest.raises(ValueError, match="bars"):
        scores.score_to_midi(tune("4/4", 0.0, bars=4), "x")


def test_music21_licence_is_the_corpus_sources_licence():
    """One place for every source's licence: the corpus module gives music21's too."""
    from nrtjax.beats.corpus import licence

    text = licence("music21")
    assert text == scores.licence() and music21.__version__ in text
    assert "BSD-3-Clause" in text and "non-commercial" in text
