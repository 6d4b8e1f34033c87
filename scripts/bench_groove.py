"""Groove extraction speed: a 30 s clip, warm, against real time and librosa's beat tracker.

    .venv/bin/python scripts/bench_groove.py [--seconds 30] [--repeats 3]

Times, in one run on the same file: nrtjax's extraction (streamed load, onset envelope,
GrFNN + ASHLE, offline beat alignment, drum events), the same plus the AI drums and mix
preview rendering, and librosa (load + librosa.beat.beat_track). Prints real-time factors
(clip length / compute time) and the ratio to librosa.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def make_clip(path: Path, seconds: float, sr: int = 44100) -> None:
    rng = np.random.default_rng(0)
    y = 0.02 * rng.standard_normal(int(seconds * sr))
    n = np.arange(int(0.2 * sr))
    beats = np.arange(0.3, seconds, 60 / 118.0)
    for k, b in enumerate(beats):
        i = int(b * sr)
        v = (np.sin(2 * np.pi * 55 * n / sr) if k % 2 == 0 else 0.6 * rng.standard_normal(n.size))
        y[i:i + n.size] += (v * np.exp(-n / (0.05 * sr)))[: y.size - i]
    t = np.arange(y.size) / sr
    y += 0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.25 * t))
    sf.write(path, np.stack([y, y], 1) / np.abs(y).max() * 0.9, sr, subtype="PCM_16")


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import librosa

    from nrtjax.audio.groove import extract_groove
    from nrtjax.audio.groove_mix import groove_audio_blocks

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "clip.wav"
        make_clip(path, args.seconds)

        def nrtjax_beats():
            return extract_groove(path)

        def nrtjax_full():
            g, info = extract_groove(path)
            for _ in groove_audio_blocks(g.events, info, g.envelope.peak):
                pass

        def librosa_beats():
            y, sr = librosa.load(str(path), sr=22050)
            return librosa.beat.beat_track(y=y, sr=sr)

        t0 = time.perf_counter()
        g, _ = nrtjax_beats()
        cold = time.perf_counter() - t0
        librosa_beats()
        t_beats = best_of(nrtjax_beats, args.repeats)
        t_full = best_of(nrtjax_full, args.repeats)
        t_lib = best_of(librosa_beats, args.repeats)
    s = args.seconds
    print(f"clip: {s:g} s, 44.1 kHz stereo; nrtjax tempo {g.tempo_bpm:.1f} BPM (true 118.0)")
    print(f"nrtjax cold (with compilation):   {cold:7.3f} s")
    print(f"nrtjax groove (warm):             {t_beats:7.3f} s  = {s / t_beats:6.1f}x real time")
    print(f"nrtjax groove + drums + mix:      {t_full:7.3f} s  = {s / t_full:6.1f}x real time")
    print(f"librosa load + beat_track:        {t_lib:7.3f} s  = {s / t_lib:6.1f}x real time")
    print(f"nrtjax groove / librosa time:     {t_beats / t_lib:7.2f}")


if __name__ == "__main__":
    main()
