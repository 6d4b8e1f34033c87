"""The Lorenz melodist mapping and the Neural Duet engine (nrtjax.audio.melody, .duet)."""

import equinox as eqx
import jax
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.audio import _duet_sim, melody
from nrtjax.audio import duet as duet_module
from nrtjax.audio.duet import DuetEngine, DuetParams

SR = 8000  # synthesis is not under test here; a low rate keeps the tests fast
BLOCK = 0.25


@pytest.fixture(scope="module")
def engine():
    return DuetEngine(sr=SR, seed=0)


def _ibi(beats, after):
    return np.diff(np.asarray(beats)[np.asarray(beats) > after])


# --- melodist mapping ------------------------------------------------------------------

def test_mapping_hand_values():
    m = melody.MelodyMapping(scale="major", root=60, octave=0)
    # x = 0 is the root, x = +-x_range the root +- one octave (2-octave span)
    np.testing.assert_array_equal(melody.degree_to_midi(melody.degree_of([-20.0, 0.0, 20.0], m), m),
                                  [48, 60, 72])
    # one degree is 40/14 in x: x = 3 rounds to degree 8 = D above the root
    assert melody.degree_to_midi(melody.degree_of(3.0, m), m) == 62
    up = m._replace(octave=1)
    assert melody.degree_to_midi(melody.degree_of(0.0, up), up) == 72
    pent = m._replace(scale="pentatonic")
    pitches = melody.degree_to_midi(np.arange(11), pent)
    np.testing.assert_array_equal(pitches, [48, 50, 52, 55, 57, 60, 62, 64, 67, 69, 72])
    np.testing.assert_allclose(melody.velocity_of([-100.0, 0.0, 25.0], m), [0.15, 0.55, 0.95])
    np.testing.assert_array_equal(melody.length_of([0.0, 12.4, 12.6, 30.0, 49.0, 80.0], m),
                                  [1, 1, 2, 3, 4, 4])
    with pytest.raises(ValueError, match="scale='lydian-ish'"):
        melody.lorenz_to_note(np.zeros(3), m._replace(scale="lydian-ish"))
    assert melody.hopf_rho() == pytest.approx(24.7368, abs=1e-4)


# --- parameters and errors -------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("tempo_bpm", 10.0), ("rho", -1.0), ("lambda1", np.nan),
                                          ("octave", 5), ("lorenz_rate", 0.0)])
def test_params_out_of_range(field, value):
    with pytest.raises(ValueError, match=f"DuetParams.{field}="):
        DuetParams(**{field: value})


def test_bad_blocks_and_forcing(engine):
    p = DuetParams()
    st = engine.init(p)
    with pytest.raises(ValueError, match="multiple of"):
        engine.process_block(st, p, 0.0123)
    with pytest.raises(ValueError, match="must have 50 samples"):
        engine.process_block(st, p, BLOCK, forcing=np.zeros(49))
    with pytest.raises(ValueError, match="NaN or inf"):
        engine.process_block(st, p, BLOCK, forcing=np.full(50, np.nan))


# --- the engine ------------------------------------------------------------------------

@pytest.mark.parametrize("tempo", [75.0, 150.0])
def test_free_tempo_matches_request(engine, tempo):
    _, _, info = engine.run(DuetParams(tempo_bpm=tempo), 16.0, block_seconds=BLOCK)
    ibi = _ibi(info.beats, 8.0)
    assert ibi.size >= 8
    np.testing.assert_allclose(ibi, 60.0 / tempo, atol=1e-3)
    # drums: a kick on beats 1 and 3, a snare on 2 and 4 of each bar of 4 beats
    kicks = [e.time_s for e in info.drum_events if e.instrument == "kick" and e.velocity > 0.7]
    assert np.allclose(np.diff(kicks)[-4:], 2 * 60.0 / tempo, atol=1e-3)


def test_entrains_to_external_forcing(engine):
    """A click track at 100 BPM (a real pulse train) through the GrFNN listener pulls a
    120 BPM drummer to 100 BPM; as a Signal or as per-block arrays alike."""
    sig = nrt.click_train(100 / 60, 20.0, 200.0)
    p = DuetParams(tempo_bpm=120.0)
    _, _, info = engine.run(p, 20.0, block_seconds=BLOCK, forcing=sig)
    ibi = _ibi(info.beats, 12.0)
    assert np.median(ibi) == pytest.approx(0.6, rel=0.01)
    xs = np.asarray(sig.xs)[:-1]
    _, _, info2 = engine.run(p, 20.0, block_seconds=BLOCK, forcing=xs)
    np.testing.assert_allclose(info2.beats, info.beats, atol=1e-9)
    assert info.pulse_amp[-1] > 0.05


def test_streaming_equals_one_long_run(engine):
    p = DuetParams(tempo_bpm=110.0, rho=28.0)
    a1, s1, i1 = engine.run(p, 6.0)
    a2, s2, i2 = engine.run(p, 6.0, block_seconds=BLOCK)
    assert a1.shape == a2.shape == (6 * SR,)
    np.testing.assert_allclose(a2, a1, atol=1e-9)
    np.testing.assert_allclose(i2.beats, i1.beats, atol=1e-9)
    assert [n.pitch for n in i2.notes] == [n.pitch for n in i1.notes] and len(i1.notes) > 5
    np.testing.assert_allclose(np.asarray(s2.sim.lorenz), np.asarray(s1.sim.lorenz), rtol=1e-9)
    np.testing.assert_allclose(i2.lorenz, i1.lorenz, rtol=1e-9, atol=1e-9)


def test_blocks_equal_one_held_simulate_run(engine):
    """The engine's blocks (each on its own clock, `simulate` with the input held over each
    step) equal one `nrt.simulate` of the duet's field over the whole forcing with
    `input_hold="zero"`, from the state the engine starts in."""
    p = DuetParams(tempo_bpm=120.0, rho=28.0)
    sig = nrt.click_train(100 / 60, 3.0, float(engine.fs_sim))
    _, _, info = engine.run(p, 3.0, block_seconds=BLOCK, forcing=sig)
    sp = _duet_sim.sim_params_from(p.sim_values(), np.float64)
    field = _duet_sim.build_field(jax.tree.map(jax.numpy.asarray, sp),
                                  jax.numpy.asarray(engine.freqs))
    assert isinstance(field, nrt.models.DuetField)
    start = engine.init(p).sim
    y0 = field.initial_state()
    for a, b in zip(jax.tree.leaves(y0), jax.tree.leaves((start.ashle, start.grfnn, start.lorenz))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    traj = nrt.simulate(field, sig, dt=1 / engine.fs_sim, input_hold="zero")
    drummer, _, xyz = traj.ys
    np.testing.assert_allclose(info.lorenz, np.asarray(xyz[1:]), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(info.f, np.asarray(drummer.f[1:]), rtol=1e-12)
    phase = np.unwrap(np.angle(np.asarray(drummer.z)))
    np.testing.assert_allclose(info.phase, phase[1:], rtol=0, atol=1e-10)
    assert info.pulse_amp[-1] > 0.05  # the forcing did drive the listener


def test_one_compile_for_changing_params(engine, monkeypatch):
    """Parameters are traced: changing them between blocks never recompiles."""
    block = _duet_sim.advance.__wrapped__
    jitted = eqx.filter_jit(eqx.debug.assert_max_traces(block, max_traces=1))
    state = engine.init(DuetParams())
    freqs = np.asarray(engine.freqs)
    sim = state.sim
    for rho, tempo, lam2 in [(28.0, 120.0, 2.0), (15.0, 90.0, 0.5), (22.0, 200.0, 4.0)]:
        p = DuetParams(rho=rho, tempo_bpm=tempo, lambda2=lam2)
        sp = _duet_sim.sim_params_from(p.sim_values(), np.float64)
        sim, _ = jitted(sim, sp, np.zeros(50, complex), freqs, engine.fs_sim)
    # and through the engine: many blocks, changing parameters, at most one trace
    counted = eqx.debug.assert_max_traces(block, max_traces=None)
    monkeypatch.setattr(duet_module, "advance", eqx.filter_jit(counted))
    st = engine.init(DuetParams())
    for k in range(6):
        p = DuetParams(rho=[28.0, 10.0][k % 2], tempo_bpm=100.0 + 10 * k, scale="minor")
        _, st, _ = engine.process_block(st, p, BLOCK)
    assert eqx.debug.get_num_traces(counted) <= 1


def test_deterministic_per_seed():
    p = DuetParams()
    a, _, i = DuetEngine(sr=SR, seed=3).run(p, 4.0, block_seconds=BLOCK)
    b, _, j = DuetEngine(sr=SR, seed=3).run(p, 4.0, block_seconds=BLOCK)
    c, _, k = DuetEngine(sr=SR, seed=4).run(p, 4.0, block_seconds=BLOCK)
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 1e-3  # other drum noise and humanised velocities
    np.testing.assert_array_equal(i.beats, k.beats)  # the same dynamics


def test_float32_engine_under_x64():
    """`dtype=np.float32` runs with x64 enabled (as in these tests) and stays float32: every
    model parameter, Lorenz's classical sigma and beta included, takes the engine's dtype."""
    assert jax.config.read("jax_enable_x64")
    p = DuetParams(tempo_bpm=110.0)
    sig = nrt.click_train(100 / 60, 2.0, 200.0)
    _, st, info = DuetEngine(sr=SR, seed=0, dtype=np.float32).run(p, 2.0, block_seconds=BLOCK,
                                                                   forcing=sig)
    assert {str(a.dtype) for a in jax.tree.leaves(st.sim)} == {"float32", "complex64"}
    assert info.lorenz.dtype == info.pulse_amp.dtype == info.grfnn_amp.dtype == np.float32
    _, _, ref = DuetEngine(sr=SR, seed=0).run(p, 2.0, block_seconds=BLOCK, forcing=sig)
    assert len(info.beats) == len(ref.beats) > 2
    np.testing.assert_allclose(info.beats, ref.beats, atol=2e-3)


def test_headroom_and_state_not_mutated(engine):
    p = DuetParams(drum_gain_db=12.0, melody_gain_db=12.0)
    st = engine.init(p)
    a, st1, _ = engine.process_block(st, p, BLOCK)
    a_again, _, _ = engine.process_block(st, p, BLOCK)
    np.testing.assert_array_equal(a, a_again)
    audio, _, _ = engine.run(p, 8.0, block_seconds=BLOCK)
    assert np.max(np.abs(audio)) < 10 ** (-1 / 20)
    assert np.max(np.abs(audio)) > 0.5


def test_calm_rho_settles_chaotic_rho_wanders(engine):
    """rho < 24.74: the melodist settles on the note of the fixed point C+- (computed here
    from the Lorenz equations); rho = 28: it keeps wandering over the scale."""
    n_calm, n_chaos = [], []
    for rho, out in ((15.0, n_calm), (28.0, n_chaos)):
        p = DuetParams(tempo_bpm=150.0, rho=rho, lorenz_rate=0.4)
        _, st, info = engine.run(p, 40.0, block_seconds=BLOCK)
        out.extend(info.notes[-24:])
        if rho == 15.0:
            c = np.sqrt(8 / 3 * (rho - 1))
            expect = {int(melody.lorenz_to_note(np.array([s * c, s * c, rho - 1]), p.mapping)[0])
                      for s in (1, -1)}
            assert {int(n.pitch) for n in out} <= expect
            assert len({round(n.length_s, 6) for n in out[-6:]}) <= 2
    assert len({int(n.pitch) for n in n_calm}) == 1
    assert len({int(n.pitch) for n in n_chaos}) >= 4


def test_drum_stem_onsets_at_the_eighths(engine):
    """Independent check: onsets found by librosa in the drum stem fall on the engine's
    drum-event times (one per eighth note)."""
    librosa = pytest.importorskip("librosa")
    eng = DuetEngine(sr=22050, seed=1)
    _, _, info = eng.run(DuetParams(tempo_bpm=100.0), 8.0, block_seconds=BLOCK)
    times = np.unique(np.round([e.time_s for e in info.drum_events], 9))
    found = librosa.onset.onset_detect(y=info.drums.astype(np.float32), sr=22050,
                                       units="time", hop_length=128, backtrack=True)
    times, found = times[times > 1.0], found[found > 1.0]
    dist = np.abs(found[:, None] - times[None, :])
    assert np.all(dist.min(axis=1) < 0.02)  # every onset heard is an event
    strong = np.array([e.time_s for e in info.drum_events if e.instrument != "hat"])
    strong = strong[strong > 1.0]
    dist = np.abs(found[:, None] - strong[None, :])
    assert np.all(dist.min(axis=0) < 0.02)  # every kick and snare is heard


# --- the `nrtjax duet` job -------------------------------------------------------------

def test_duet_job_writes_outputs(tmp_path):
    import json

    import soundfile as sf

    from experiments import duet as duet_job
    from experiments._job import Run, WandbConfig

    cfg = duet_job.Config(duration=6.0, sr=16000, stimulus_bpm=100.0, seed=2,
                          wandb=WandbConfig(mode="disabled"))
    metrics = duet_job.main.run_fn(Run("duet", cfg, {}, tmp_path))
    for name in ("duet.wav", "duet_drums.wav", "duet_melody.wav", "duet.png",
                 "duet_notes.csv", "duet_drum_events.csv", "duet_beats.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    full, sr = sf.read(tmp_path / "duet.wav")
    drums, _ = sf.read(tmp_path / "duet_drums.wav")
    tune, _ = sf.read(tmp_path / "duet_melody.wav")
    assert sr == 16000 and full.shape == (6 * 16000,)
    assert 20 * np.log10(np.max(np.abs(full))) <= -1.0 + 0.01
    np.testing.assert_allclose(drums + tune, full, atol=3 / 32768)  # stems sum to the mix
    assert metrics["peak_dbfs"] == pytest.approx(-1.0, abs=1e-9)
    assert metrics["n_notes"] == len((tmp_path / "duet_notes.csv").read_text().splitlines()) - 1
    header = (tmp_path / "duet_drum_events.csv").read_text().splitlines()[0]
    assert header == "time_s,instrument,velocity"
    beats = np.loadtxt(tmp_path / "duet_beats.csv", delimiter=",", skiprows=1)
    assert metrics["n_beats"] == beats.size
    for key in ("tempo_bpm_achieved", "latency_ms_p50", "latency_ms_p99", "realtime_factor"):
        assert np.isfinite(metrics[key])
    json.dumps(metrics)


def test_duet_cli_rejects_bad_config():
    import os

    from experiments import duet as duet_job
    from experiments._job import ConfigError
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["PYTHONPATH"] = str(root)
    r = subprocess.run([sys.executable, "-m", "experiments._cli", "duet", "rho=-3",
                        "wandb.mode=disabled"], cwd=root, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "rho=-3" in r.stderr
    with pytest.raises(ConfigError, match="scale='lydianish'"):
        duet_job.Config(scale="lydianish")
