"""The beat corpus: annotations against independent oracles, and a tiny end-to-end build.

The oracles: an MMA groove at T beats a minute has a beat every 60/T s (a 6/8 groove
counts dotted quarters: two a bar); the groove's drum notes fall on those beats in the
MIDI and, rendered by fluidsynth, in the audio; a tempo ramp's time map has derivative
1/r(t). Tests that need MMA or fluidsynth (Debian packages; `nrtjax beat_data` installs
them itself) are skipped with the reason when they are missing.
"""

import copy
import dataclasses
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from nrtjax.beats import corpus

needs_mma = pytest.mark.skipif(shutil.which("mma") is None or not corpus.MMA_LIB.exists(),
                               reason="MMA is not installed (Debian package mma)")
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None
    or not corpus.Path(corpus.SOUNDFONTS["TimGM6mb"][0]).exists(),
    reason="fluidsynth or the TimGM6mb soundfont is not installed "
           "(Debian packages fluidsynth, timgm6mb-soundfont)")


def groove(name):
    found = [g for g in corpus.mma_grooves() if g.name.lower() == name.lower()]
    assert found, f"groove {name} not in MMA's library"
    return found[0]


def mma_piece(tmp_path, name, bpm, bars=8):
    import pretty_midi

    g = groove(name)
    song = corpus.mma_song(g, "C G Am F", beat_bpm=float(bpm), bars=bars, transpose=0, seed=1)
    pm = pretty_midi.PrettyMIDI(str(corpus.run_mma(song, tmp_path)))
    return g, pm, *corpus.mma_beats(pm, g, bars)


def drum_hits(pm, beats, tol=0.02):
    """Fraction of beats with a drum note onset within `tol` s."""
    on = corpus.note_onsets(pm, drums=True)
    return np.mean([np.min(np.abs(on - b)) <= tol for b in beats])


def test_metre_rules():
    assert corpus._metre(4.0, (4, 4)) == 4 and corpus._metre(3.0, (3, 4)) == 3
    assert corpus._metre(6.0, (6, 8)) == 2 and corpus._metre(2.0, (6, 8)) == 2
    assert corpus._metre(4.0, (12, 8)) == 4 and corpus._metre(3.0, (9, 8)) == 3
    assert corpus._metre(4.0, (3, 4)) is None  # Time and TimeSig disagree: left out


def test_beat_numbers_and_tempo_warp():
    beats = np.arange(10) * 0.5
    # four beats a bar, downbeats at beats 1, 5 and 9, one pickup beat before them
    num = corpus.beat_numbers(beats, beats[[1, 5, 9]])
    np.testing.assert_array_equal(num, [4, 1, 2, 3, 4, 1, 2, 3, 4, 1])
    t, new = corpus.tempo_warp(20.0, 1.0, 1.0)
    np.testing.assert_allclose(new, t)
    t, new = corpus.tempo_warp(20.0, 0.8, 1.2, step=0.01)
    r = 0.8 + 0.4 * t / 20.0
    # d new / dt = 1 / r(t): central differences against the analytic derivative
    np.testing.assert_allclose(np.gradient(new, t)[1:-1], 1 / r[1:-1], rtol=1e-4)
    assert new[0] == 0.0


def test_beats_file_round_trip(tmp_path):
    p = tmp_path / "x.beats"
    corpus.write_beats(p, np.array([0.5, 1.0, 1.5]), np.array([1, 2, 3]))
    t, n = corpus.read_beats(p)
    np.testing.assert_allclose(t, [0.5, 1.0, 1.5])
    np.testing.assert_array_equal(n, [1, 2, 3])
    p.write_text("0.5 1\nzero 2\n")
    with pytest.raises(ValueError, match="x.beats:2"):
        corpus.read_beats(p)
    p.write_text("1.0 1\n0.5 2\n")
    with pytest.raises(ValueError, match="increase"):
        corpus.read_beats(p)


@needs_mma
@pytest.mark.parametrize("name, bpm, per_bar", [("50sRock", 120, 4), ("Waltz", 150, 3),
                                                 ("68Swing", 60, 2), ("68March", 100, 2)])
def test_mma_beats_oracle(tmp_path, name, bpm, per_bar):
    """Beats every 60/T s (MMA plays whole-number tempi), bars of `per_bar` beats, drum
    notes on the beats."""
    g, pm, beats, num = mma_piece(tmp_path, name, bpm)
    assert g.beats_per_bar == per_bar
    np.testing.assert_allclose(np.diff(beats), 60.0 / bpm, atol=2e-3)
    assert beats[0] == 0.0 and num[0] == 1
    np.testing.assert_array_equal(num, np.arange(beats.size) % per_bar + 1)
    assert drum_hits(pm, beats) >= 0.9


@needs_mma
@needs_fluidsynth
def test_rendered_drums_sit_on_the_warped_beats(tmp_path):
    """After a tempo ramp, the rendered drum hits are where the annotation says (the
    fluidsynth tempo-event drift that constant_tempo removes would put them 100+ ms off
    by the end)."""
    from scipy.signal import butter, sosfiltfilt

    g, pm, beats, _ = mma_piece(tmp_path, "50sRock", 100, bars=10)
    orig, new = corpus.tempo_warp(pm.get_end_time() + 1.0, 0.9, 1.2)
    pm.adjust_times(orig, new)
    beats = np.interp(beats, orig, new)
    pm.instruments = [i for i in pm.instruments if i.is_drum]
    sr = 22050
    x = corpus.render(corpus.constant_tempo(pm), corpus.SOUNDFONTS["TimGM6mb"][0], sr)
    y = sosfiltfilt(butter(2, 1000, "highpass", fs=sr, output="sos"), x)
    env = np.sqrt(np.convolve(y**2, np.ones(22) / 22, "same"))
    on = np.unique(np.round(corpus.note_onsets(pm, drums=True), 3))
    assert drum_hits(pm, beats) >= 0.9  # the MIDI's drum notes are on the warped beats
    lags = np.arange(-0.1, 0.1005, 0.001)
    found = []
    for part in (on[on < 8.0], on[on > on[-1] - 8.0]):  # the audio's drums on the MIDI's
        score = [np.mean(env[np.round((part + lag) * sr).astype(int)]) for lag in lags]
        found.append(lags[int(np.argmax(score))])
    # the attack and fluidsynth's 64-sample buffer: a few ms, the same at both ends
    assert 0.0 <= found[0] <= 0.02 and abs(found[1] - found[0]) <= 0.004


@needs_mma
@needs_fluidsynth
def test_tiny_build(tmp_path):
    """A build of a few short clips: files, annotations, manifest, splits, determinism."""
    from experiments import beat_data
    from experiments._job import Run, WandbConfig

    def build(out):
        cfg = beat_data.Config(out=str(out), n_train=3, n_valid=1, n_test=1, min_clip_s=10.0,
                               max_clip_s=11.0, eval_clip_s=12.0, soundfonts=["TimGM6mb"],
                               workers=1, install=False, negative_p=0.5,
                               wandb=WandbConfig(mode="disabled"))
        return beat_data.main.run_fn(Run("beat_data", cfg, {}, tmp_path / "run"))

    summary = build(tmp_path / "a")
    assert summary["train_items"] == 3 and summary["valid_items"] == summary["test_items"] == 1
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert not (tmp_path / ".a.partial").exists()
    splits = {}
    for it in m["items"]:
        x, sr = sf.read(tmp_path / "a" / it["audio"])
        assert sr == 22050 and x.ndim == 1 and x.size == int(round(it["duration_s"] * sr))
        assert np.max(np.abs(x)) <= 1.0 and np.max(np.abs(x)) > 0.05
        t, n = corpus.read_beats(tmp_path / "a" / it["beats"])
        assert t.size == it["n_beats"] and np.all((t >= 0) & (t < it["duration_s"]))
        assert np.all((n >= 1) & (n <= it["beats_per_bar"]))
        assert m["licences"][it["package"]]
        splits.setdefault(it["piece"], set()).add(it["split"])
    assert all(len(s) == 1 for s in splits.values())  # a piece lies in one split
    # the held-out package's first song opens the test split
    test = [it for it in m["items"] if it["split"] == "test"]
    assert test[0]["package"] == "planetblupi-music-midi"
    # deterministic from the seed
    build(tmp_path / "b")
    for it in m["items"]:
        beats_a, beats_b = (tmp_path / d / it["beats"] for d in "ab")
        assert beats_a.read_text() == beats_b.read_text()
        xa, _ = sf.read(tmp_path / "a" / it["audio"])
        xb, _ = sf.read(tmp_path / "b" / it["audio"])
        np.testing.assert_array_equal(xa, xb)
    # a finished corpus is kept as it is
    assert build(tmp_path / "a") == summary


@needs_mma
def test_bare_drums_keep_kick_snare_and_toms(tmp_path):
    """`bare_drums` keeps only the drum notes of a bare kit (GM keys listed by hand here),
    `drums_only` all drum notes, and a piece without drums falls back to `all`."""
    _, pm, _, _ = mma_piece(tmp_path, "60sRock", 120)
    drum_pitches = {n.pitch for i in pm.instruments if i.is_drum for n in i.notes}
    assert drum_pitches & {42, 44, 46, 49, 51}  # the groove has hats or cymbals to drop
    kept = {35, 36, 37, 38, 39, 40, 41, 43, 45, 47, 48, 50}
    rng = np.random.default_rng(0)
    bare = copy.deepcopy(pm)
    assert corpus.select_stems(bare, "bare_drums", rng) == "bare_drums"
    assert all(i.is_drum for i in bare.instruments)
    pitches = [n.pitch for i in bare.instruments for n in i.notes]
    assert pitches and set(pitches) <= kept
    assert len(pitches) == sum(n.pitch in kept for i in pm.instruments if i.is_drum
                               for n in i.notes)
    no_drums = copy.deepcopy(pm)
    no_drums.instruments = [i for i in no_drums.instruments if not i.is_drum]
    assert corpus.select_stems(no_drums, "bare_drums", rng) == "all"


def _centroid(x, sr):
    """The frequency below which half the sound's power lies (plain FFT)."""
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float(f[np.searchsorted(np.cumsum(power), 0.5 * np.sum(power))])


def test_drum_machine_sounds():
    """Each synthesised kind is finite with peak 1, and sits where a drum of its kind sits
    in the spectrum (the frequency halving its power, by a plain FFT here); the same
    generator state gives the same sound."""
    sr = 22050
    rng = np.random.default_rng(3)
    for _ in range(5):
        sounds = {k: corpus.drum_sound(k, sr, rng) for k in (*corpus.DRUM_KINDS, "other")}
        for k, x in sounds.items():
            assert np.all(np.isfinite(x)) and np.max(np.abs(x)) == pytest.approx(1.0, rel=1e-5), k
        assert _centroid(sounds["kick"], sr) < 150
        assert _centroid(sounds["hat"], sr) > 4000 and _centroid(sounds["cymbal"], sr) > 4000
        assert _centroid(sounds["kick"], sr) < _centroid(sounds["snare"], sr) < 8000
    a = corpus.drum_sound("snare", sr, np.random.default_rng(1))
    np.testing.assert_array_equal(a, corpus.drum_sound("snare", sr, np.random.default_rng(1)))


def test_synth_drums_start_on_their_notes():
    """Every hit starts at its note's sample: silence before the first note, and for
    notes 1 s apart the energy jumps at each note's start."""
    sr = 22050
    keys = [36, 38, 39, 42, 45, 36, 40, 44]
    notes = [(0.5 + k, key, 100) for k, key in enumerate(keys)]
    x = corpus.synth_drums(notes, 10 * sr, sr, np.random.default_rng(0))
    assert np.all(x[: int(0.5 * sr)] == 0) and np.all(np.isfinite(x))
    w = int(0.02 * sr)
    for start, key, _ in notes:
        i = int(round(start * sr))
        assert np.sum(x[i:i + w] ** 2) > 100 * (np.sum(x[i - w:i] ** 2) + 1e-12), key
    y = corpus.synth_drums(notes, 10 * sr, sr, np.random.default_rng(0))
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x, corpus.synth_drums(notes, 10 * sr, sr,
                                                    np.random.default_rng(1)))


@needs_mma
@needs_fluidsynth
def test_synth_drums_item(tmp_path):
    """A train item whose drums come from the drum machine: its record keeps the draw,
    and the high-passed audio's hits line up with the annotated beats within a few ms (the
    hits start at the note's sample; the filters' rise takes a few ms)."""
    from scipy.signal import butter, sosfiltfilt

    from experiments import beat_data

    cfg = beat_data.Config(synth_drums_p=1.0, bare_drums_p=1.0, soundfonts=["TimGM6mb"],
                           min_clip_s=12.0, max_clip_s=12.5, negative_p=0.0,
                           whole_negative_p=0.0)
    src = beat_data.sources(dataclasses.replace(cfg, sources=["mma"]))
    for i in range(8):
        spec = beat_data.plan_item(cfg, "train", i, 0, src["train"])
        spec["eq"], spec["reverb"], spec["noise"] = "none", None, None
        rec = corpus.make_item(spec, tmp_path, 22050)
        if "rejected" not in rec and rec["stems"] == "bare_drums":
            break
    assert rec["spec"]["synth_drums"]["seed"] == spec["synth_drums"]["seed"]
    x, sr = sf.read(tmp_path / f"{rec['name']}.flac")
    t, _ = corpus.read_beats(tmp_path / f"{rec['name']}.beats")
    y = sosfiltfilt(butter(2, 100, "highpass", fs=sr, output="sos"), x)
    env = np.sqrt(np.convolve(y**2, np.ones(44) / 44, "same"))
    t = t[(t > 0.1) & (t < x.size / sr - 0.2)]
    lags = np.arange(-0.05, 0.0505, 0.001)
    score = [np.mean(env[np.round((t + lag) * sr).astype(int)]) for lag in lags]
    assert -0.002 <= lags[int(np.argmax(score))] <= 0.01  # attacks start on the note


def test_bare_drums_p_draws_nothing_when_off():
    """bare_drums_p=0 leaves every planned item as it was (the shipped corpora rebuild
    unchanged); above 0 it sets some train items' stems and no eval item's."""
    from experiments import beat_data

    src = {"mma": [{"family": "f", "name": "g", "bar_quarters": 4.0, "beats_per_bar": 4}],
           "midi": [], "held_out": []}
    off = beat_data.Config()
    plans = [beat_data.plan_item(off, "train", i, 0, src) for i in range(200)]
    rerun = [beat_data.plan_item(off, "train", i, 0, src) for i in range(200)]
    assert plans == rerun and all(p["stems"] != "bare_drums" and "synth_drums" not in p
                                  for p in plans)
    on = dataclasses.replace(off, bare_drums_p=0.5)
    bare = [beat_data.plan_item(on, "train", i, 0, src)["stems"] for i in range(200)]
    assert 0.35 < np.mean([b == "bare_drums" for b in bare]) < 0.65
    assert all(beat_data.plan_item(on, s, i, 0, src)["stems"] != "bare_drums"
               for s in ("valid", "test") for i in range(50))


def test_config_errors():
    from experiments import beat_data
    from experiments._job import ConfigError

    with pytest.raises(ConfigError, match="soundfonts"):
        beat_data.Config(soundfonts=["NoSuchFont"])
    with pytest.raises(ConfigError, match="min_clip_s"):
        beat_data.Config(min_clip_s=2.0)
    with pytest.raises(ConfigError, match="version"):
        beat_data.Config(version="a/b")
    with pytest.raises(ConfigError, match="sources"):
        beat_data.Config(sources=["no-such-package"])
    with pytest.raises(ConfigError, match="sources is empty"):
        beat_data.Config(sources=[])
    with pytest.raises(ConfigError, match="bare_drums_p"):
        beat_data.Config(bare_drums_p=1.5)
    with pytest.raises(ConfigError, match="synth_drums_p"):
        beat_data.Config(synth_drums_p=-0.1)


@pytest.mark.skipif(not corpus.MIDI_SOURCES["simutrans-data"].exists(),
                    reason="simutrans-data (Debian) is not installed")
def test_sources_choose_the_packages():
    from experiments import beat_data

    src = beat_data.sources(beat_data.Config(sources=["simutrans-data"]))
    pieces = [p for s in src.values() for kind in s.values() for p in kind]
    assert pieces and not any(s["mma"] or s["held_out"] for s in src.values())
    assert {p["package"] for p in pieces} == {"simutrans-data"}
    assert "music21" not in beat_data.Config().sources  # the default builds the v2 corpus


def test_cache_dir(monkeypatch, tmp_path):
    from experiments import beat_data

    monkeypatch.setenv("NRTJAX_CACHE", str(tmp_path / "c"))
    assert beat_data.cache_dir("v9") == tmp_path / "c" / "beat_data" / "v9"
    monkeypatch.delenv("NRTJAX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert beat_data.cache_dir("v9") == tmp_path / "x" / "nrtjax" / "beat_data" / "v9"


def test_groove_dataclass_round_trips():
    g = corpus.Groove("stdlib/x", "X", 6.0, 2)
    assert corpus.Groove(**dataclasses.asdict(g)) == g and g.quarters_per_beat == 3.0
