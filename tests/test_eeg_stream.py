"""Block streaming: the streamed EEG half equals the offline analysis; the duet stream."""

import jax.random as jr
import numpy as np
import pytest

from nrtjax.eeg import biomarkers as bm, mapping, stream, twin
from nrtjax.eeg.io import EEGRecording


@pytest.fixture(scope="module")
def session():
    subj = twin.twin_subject(key=jr.key(40))
    base = twin.simulate_twin(["neutral"], seconds=20.0, key=jr.key(41), subject=subj)
    rec = twin.simulate_twin(["stressed", "relaxed_awake"], seconds=8.0, key=jr.key(42),
                             subject=subj)
    an, baseline = bm.analyse(rec, baseline=base)
    return rec, an, baseline


def test_blocks_cover_every_sample_once():
    rec = EEGRecording(np.arange(1000.0)[None], 128.0, ("Cz",))
    parts = list(stream.blocks(rec, 0.3))               # 38.4 samples per block
    got = np.concatenate([b for _, b in parts], axis=1)[0]
    np.testing.assert_array_equal(got, np.arange(got.size))
    assert len(parts) == 26 and parts[-1][0] == pytest.approx(got.size / 128.0)


def test_streamed_biomarkers_equal_the_offline_analysis(session):
    # The ring buffer, the carried filter state and the per-window masks must reproduce
    # the vectorised offline computation at every common window end time.
    rec, an, baseline = session
    streamer = stream.EEGStreamer(rec.fs, 14, baseline, tau_s=0.0)
    state = streamer.init(rec.data[:, 0])
    got = {}
    for t_end, block in stream.blocks(rec, 0.25):
        state, out = streamer.step(state, block)
        got[round(t_end, 6)] = out
    for k, t in enumerate(an.times):
        out = got[round(t, 6)]
        np.testing.assert_allclose(out.normalised, an.normalised[k], rtol=1e-8)
        expect = mapping.map_biomarkers(an.normalised[k])
        assert out.params.keys() == expect.keys()
        np.testing.assert_allclose(list(out.params.values()), list(expect.values()), rtol=1e-8)
    first = got[0.25]
    np.testing.assert_array_equal(first.normalised, np.ones(4))      # buffer not yet full
    assert first.state == -1


def test_smoothing_glides_towards_the_new_value(session):
    rec, _, baseline = session
    fast = stream.EEGStreamer(rec.fs, 14, baseline, tau_s=0.0)
    slow = stream.EEGStreamer(rec.fs, 14, baseline, tau_s=2.0)
    sf, ss = fast.init(rec.data[:, 0]), slow.init(rec.data[:, 0])
    rho_f, rho_s = [], []
    for _, block in stream.blocks(rec, 0.25):
        sf, of = fast.step(sf, block)
        ss, os_ = slow.step(ss, block)
        rho_f.append(of.params["rho"])
        rho_s.append(os_.params["rho"])
    rho_f, rho_s = np.array(rho_f), np.array(rho_s)
    # Exponential smoothing: each step moves a fraction 1 - exp(-0.25/2) of the gap.
    assert np.abs(np.diff(rho_s)).max() < np.abs(np.diff(rho_f)).max()
    assert rho_s[31] > mapping.LORENZ_CRITICAL_RHO                    # stressed, settled
    assert rho_s[-1] < mapping.LORENZ_CRITICAL_RHO                    # relaxed, settled


def test_duet_stream_produces_audio_and_latencies(session):
    from nrtjax.audio.duet import DuetEngine, DuetParams

    rec, _, baseline = session
    streamer = stream.EEGStreamer(rec.fs, 14, baseline)
    engine = DuetEngine(sr=8000, seed=0)
    res = stream.stream_duet(rec, streamer, engine, DuetParams(), block_s=0.25)
    n = 64
    assert res.times.shape == (n,) and res.normalised.shape == (n, 4)
    assert res.audio.shape == (16 * 8000,) and np.all(np.isfinite(res.audio))
    assert np.abs(res.audio).max() <= 1.0 and np.abs(res.audio).max() > 0.01
    assert np.all(res.latency_s > 0) and len(res.infos) == n
    # The engine received the mapped parameters block by block.
    assert res.params["rho"][31] > mapping.LORENZ_CRITICAL_RHO > res.params["rho"][-1]
    stats = stream.latency_stats(res.latency_s, 0.25)
    assert stats["n_blocks"] == n and stats["realtime_factor"] > 0
    assert stats["latency_ms_p50"] <= stats["latency_ms_p99"] <= stats["latency_ms_max"]
    with pytest.raises(ValueError, match="shorter than one block"):
        short = EEGRecording(rec.data[:, :10], rec.fs, rec.ch_names)
        stream.stream_duet(short, streamer, engine, DuetParams(), block_s=0.25)
