"""Benchmark of EEG -> audio streaming: per-block latency (p50/p99) and real-time factor.

    .venv/bin/python scripts/bench_eeg_stream.py [--seconds 60] [--block 0.25] [--sr 22050]

Streams an Emotiv Epoc X twin recording (14 channels, 128 Hz, all five states in turn)
through the EEG pipeline and the duet engine, block by block, on this machine's CPU
(docs/benchmarks.md target: p99 block latency < 50 ms on 2 CPU cores). A block's latency
is its compute time: filtering, Welch band powers, artefact masks, biomarkers, state,
parameters, and the engine's simulation and synthesis of the block's audio. The EEG half
alone is timed too, in the same run, so the share of each half is visible.
"""

import argparse
import os
import time

import jax.random as jr
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="recording length (s)")
    ap.add_argument("--block", type=float, default=0.25, help="block length (s)")
    ap.add_argument("--sr", type=int, default=22050, help="audio sampling rate (Hz)")
    args = ap.parse_args()

    from nrtjax.audio.duet import DuetEngine, DuetParams
    from nrtjax.eeg import biomarkers as bm, stream, twin

    key = jr.key(0)
    subj = twin.twin_subject(key=jr.fold_in(key, 0))
    base = twin.simulate_twin([twin.BASELINE], seconds=60.0, key=jr.fold_in(key, 1),
                              subject=subj)
    rec = twin.simulate_twin(twin.STATES, seconds=args.seconds / 5, key=jr.fold_in(key, 2),
                             subject=subj)
    _, baseline = bm.analyse(rec, baseline=base)
    streamer = stream.EEGStreamer(rec.fs, len(rec.ch_names), baseline)

    # The EEG half alone.
    state, eeg_lat = streamer.init(rec.data[:, 0]), []
    for _, block in stream.blocks(rec, args.block):
        t0 = time.perf_counter()
        state, _ = streamer.step(state, block)
        eeg_lat.append(time.perf_counter() - t0)
    eeg_lat = np.array(eeg_lat) * 1e3

    engine = DuetEngine(sr=args.sr, seed=0)
    result = stream.stream_duet(rec, streamer, engine, DuetParams(scale="minor", gamma=1.0),
                                block_s=args.block)
    s = stream.latency_stats(result.latency_s, args.block)
    print(f"cpu cores visible: {len(os.sched_getaffinity(0))}; blocks: {s['n_blocks']} x "
          f"{args.block * 1e3:.0f} ms; audio {args.sr} Hz")
    print(f"EEG half only      : p50 {np.percentile(eeg_lat, 50):6.2f} ms  "
          f"p99 {np.percentile(eeg_lat, 99):6.2f} ms")
    print(f"EEG + duet engine  : p50 {s['latency_ms_p50']:6.2f} ms  "
          f"p99 {s['latency_ms_p99']:6.2f} ms  max {s['latency_ms_max']:6.2f} ms")
    print(f"real-time factor   : {s['realtime_factor']:.1f}x (audio seconds per compute "
          f"second)")
    ok = s["latency_ms_p99"] < 50.0
    print(f"target p99 < 50 ms : {'PASS' if ok else 'MISS'} "
          f"({s['latency_ms_p99'] / 50.0:.2f} of the budget)")


if __name__ == "__main__":
    main()
