"""Visual duet: motion in a video drives the drummer's rhythm and the melodist's register.

`nrtjax visual_duet video=PATH out=DIR` reads the video, extracts motion energy and the
vertical position of the moving mass, turns the energy into a phase-carrying forcing (a
GrFNN resonator bank) for the Neural Duet's ASHLE drummer and the height into the Lorenz
melodist's register, and writes STEM_duet.wav, STEM_features.csv, STEM_dashboard.png and
metrics.json into DIR. Without `video=` it generates the four stimuli (bouncing ball clean
and noisy, drifting grating, point-light walker) into DIR/stimuli and runs each.
"""

import dataclasses
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
from tqdm import tqdm

import nrtjax as nrt
import nrtjax.video as nv
from experiments._job import (
    BaseConfig, ConfigError, Run, check_choice, check_range, input_path, job)
from nrtjax.audio.duet import BlockInfo, DuetEngine, DuetParams
from nrtjax.audio.io import write_wav
from nrtjax.plots.video import VisualDuetTrace, visual_duet_dashboard


@dataclasses.dataclass
class Config(BaseConfig):
    video: str | None = input_path()
    out: str | None = None
    method: str = "difference"
    roi: list[int] | None = None
    scale: float = 0.5
    blur: float = 1.0
    smooth: float = 0.05
    fs: int = 200
    fmin: float = 0.5
    fmax: float = 4.0
    n_resonators: int = 48
    r0: float = 0.05
    floor: float = 0.02
    salience_threshold: float = 0.5
    min_peakiness: float = 2.0
    tempo_bpm: float = 120.0
    rho: float = 28.0
    register_low: float = 36.0
    register_high: float = 84.0
    block_seconds: float = 0.25
    sr: int = 22050
    fps: float = 30.0
    duration: float = 10.0

    def __post_init__(self):
        check_choice("method", self.method, nv.motion.METHODS)
        if self.roi is not None and len(self.roi) != 4:
            raise ConfigError(f"roi={self.roi!r} must be [x, y, width, height] in pixels.")
        check_range("scale", self.scale, low=0.0, high=1.0, low_open=True)
        check_range("blur", self.blur, low=0.0, high=20.0)
        check_range("smooth", self.smooth, low=0.0, high=1.0)
        check_range("fs", self.fs, low=50, high=2000)
        check_range("fmin", self.fmin, low=0.1, high=8.0)
        check_range("fmax", self.fmax, low=self.fmin, high=self.fs / 8, low_open=True)
        check_range("n_resonators", self.n_resonators, low=2, high=1000)
        check_range("r0", self.r0, low=0.0, low_open=True)
        check_range("floor", self.floor, low=0.0, high=1.0)
        check_range("salience_threshold", self.salience_threshold, low=0.0, high=1.0)
        check_range("min_peakiness", self.min_peakiness, low=1.0)
        check_range("tempo_bpm", self.tempo_bpm, low=30.0, high=300.0)
        check_range("rho", self.rho, low=0.0, high=100.0, low_open=True)
        check_range("register_low", self.register_low, low=12.0, high=108.0)
        check_range("register_high", self.register_high, low=self.register_low, high=108.0,
                    low_open=True)
        check_range("block_seconds", self.block_seconds, low=0.02, high=10.0)
        if abs(self.block_seconds * self.fs - round(self.block_seconds * self.fs)) > 1e-6:
            raise ConfigError(f"block_seconds={self.block_seconds!r} must be a multiple of "
                              f"1/fs = {1 / self.fs:g} s, e.g. 0.25.")
        check_range("sr", self.sr, low=8000, high=192000)
        check_range("fps", self.fps, low=5.0, high=240.0)
        check_range("duration", self.duration, low=2.0, high=600.0)


def extract(path: Path, cfg: Config) -> nv.MotionFeatures:
    """Motion features with a progress bar over the frames."""
    info = nv.probe(path)
    crop = nv.Crop(roi=tuple(cfg.roi) if cfg.roi else None, scale=cfg.scale)
    with tqdm(total=info.n_frames or None, desc=f"frames {path.name}", unit="frame",
              leave=False) as bar:
        return nv.extract_motion(path, method=cfg.method, crop=crop, blur=cfg.blur,
                                 progress=bar.update)


def perform(forcing: nrt.Signal, octaves: np.ndarray, cfg: Config, seed: int):
    """Stream the duet block by block: the motion forcing drives the drummer, the
    register (an octave per block) moves the melodist."""
    engine = DuetEngine(sr=cfg.sr, seed=seed, fs_sim=cfg.fs)
    params = DuetParams(tempo_bpm=cfg.tempo_bpm, rho=cfg.rho)
    state = engine.init(params)
    per = int(round(cfg.block_seconds * cfg.fs))
    xs = np.asarray(forcing.xs)  # on the engine's grid k / fs_sim
    audio, infos = [], []
    for b, octave in enumerate(tqdm(octaves, desc="duet blocks", unit="block", leave=False)):
        block, state, info = engine.process_block(
            state, params.replace(octave=int(octave)), cfg.block_seconds,
            xs[b * per:(b + 1) * per])
        audio.append(block)
        infos.append(info)
    return np.concatenate(audio), BlockInfo.join(infos)


def block_octaves(ts: np.ndarray, vertical: np.ndarray, cfg: Config) -> np.ndarray:
    """The melodist's octave shift per block: the mean register of the block, in octaves
    from middle C, rounded."""
    per = int(round(cfg.block_seconds * cfg.fs))
    n_blocks = (ts.size - 1) // per
    register = np.asarray(nv.register_from_position(vertical, low=cfg.register_low,
                                                    high=cfg.register_high))
    means = register[: n_blocks * per].reshape(n_blocks, per).mean(axis=1)
    return np.clip(np.rint((means - 60.0) / 12.0), -3, 3).astype(int)


def rhythm_metrics(ts, drum_phase, feats: nv.MotionFeatures, forcing: nv.MotionForcing,
                   cfg: Config, true_period: float | None) -> tuple[dict, np.ndarray]:
    """Tempo and motion-rhythm PLV over the second half of the clip (after settling)."""
    mphase, mpeak = nv.motion_phase(feats.times, feats.energy, feats.fps,
                                    fmin=cfg.fmin, fmax=cfg.fmax)
    mphase_t = np.interp(ts, feats.times, mphase)
    late = ts >= ts[-1] / 2
    t_l, p_l = ts[late], drum_phase[late]
    tempo = 60.0 * (p_l[-1] - p_l[0]) / (2 * np.pi * (t_l[-1] - t_l[0]))
    m = {
        "tempo_bpm": float(tempo),
        "motion_rhythm_plv": float(nrt.plv(mphase_t[late], p_l)),
        "motion_peak_bpm": 60.0 * mpeak,
        "beat_salience": forcing.salience,
        "beat_detected": nv.has_beat(forcing, threshold=cfg.salience_threshold,
                                     min_peakiness=cfg.min_peakiness),
        "resonance_peakiness": forcing.peakiness,
        "resonance_peak_bpm": 60.0 * forcing.peak_hz,
        "spontaneous_tempo_bpm": cfg.tempo_bpm,
    }
    if true_period is not None:
        true_bpm = 60.0 / true_period
        m["true_tempo_bpm"] = true_bpm
        m["tempo_error_pct"] = 100.0 * abs(tempo - true_bpm) / true_bpm
        m["true_phase_plv"] = float(nrt.plv(2 * np.pi * t_l / true_period, p_l))
    return m, mphase_t


def run_video(path: Path, out: Path, cfg: Config, seed: int,
              true_period: float | None = None, stem: str | None = None) -> dict:
    """The whole visual duet for one video; writes STEM_* files into `out`."""
    stem = stem or path.stem
    feats = extract(path, cfg)
    ts, energy, vertical = nv.resample(feats, cfg.fs, smooth=cfg.smooth)
    per = int(round(cfg.block_seconds * cfg.fs))
    n = ((ts.size - 1) // per) * per + 1
    if n < 2 * per + 1:
        raise nv.VideoError(f"{path} is {ts[-1]:.2f} s long; the duet needs at least "
                            f"{2 * cfg.block_seconds:g} s of video.")
    ts, energy, vertical = ts[:n], energy[:n], vertical[:n]
    forcing = nv.motion_forcing(ts, energy, fmin=cfg.fmin, fmax=cfg.fmax, n=cfg.n_resonators,
                                r0=cfg.r0, floor=cfg.floor)
    octaves = block_octaves(ts, vertical, cfg)
    audio, info = perform(forcing.signal, octaves, cfg, seed)
    metrics, mphase_t = rhythm_metrics(info.ts, info.phase, feats, forcing, cfg, true_period)
    metrics.update(n_frames=feats.n_frames, complete=feats.complete, fps=feats.fps,
                   duration_s=float(ts[-1]), method=cfg.method,
                   audio_peak=float(np.max(np.abs(audio))),
                   n_beats=int(info.beats.size), n_notes=len(info.notes))
    write_wav(out / f"{stem}_duet.wav", audio, cfg.sr)
    nrt.io.write_columns(out / f"{stem}_features.csv", {
        "time_s": feats.times, "motion_energy": feats.energy,
        "vertical_position": feats.vertical})
    _dashboard(path, out / f"{stem}_dashboard.png", feats, forcing, info, mphase_t, octaves,
               audio, cfg, true_period, metrics, stem)
    return metrics


def _dashboard(path, target, feats, forcing, info, mphase_t, octaves, audio, cfg, true_period,
               metrics, stem) -> None:
    idx = np.linspace(0, feats.n_frames - 1, 4).astype(int).tolist()
    frames = nv.read_frames_at(path, idx, crop=nv.Crop(roi=tuple(cfg.roi) if cfg.roi else None))
    dt = 1.0 / cfg.fs
    tempo = 60.0 * np.gradient(info.phase, dt) / (2 * np.pi)
    trace = VisualDuetTrace(
        frames=frames, frame_times=np.asarray(idx[: len(frames)]) / feats.fps,
        times=feats.times, energy=feats.energy, vertical=feats.vertical,
        bank_ts=np.asarray(forcing.signal.ts), bank_freqs=forcing.freqs,
        bank_amp=forcing.amplitude, drum_ts=info.ts, drum_phase=info.phase,
        drum_tempo_bpm=tempo, motion_phase=mphase_t,
        beats=info.beats, lorenz=info.lorenz,
        octave_ts=np.arange(octaves.size) * cfg.block_seconds, octave=octaves,
        audio=audio, sr=cfg.sr, true_bpm=None if true_period is None else 60.0 / true_period,
        title=f"visual duet: {stem} ({cfg.method})")
    keys = ("tempo_bpm", "true_tempo_bpm", "motion_rhythm_plv", "beat_salience")
    fig = visual_duet_dashboard(trace, metrics={k: metrics[k] for k in keys if k in metrics})
    nrt.io.save_figure(fig, target)


@job("visual_duet", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    out = run.dir
    if cfg.video is not None:
        metrics = run_video(Path(cfg.video), out, cfg, cfg.seed)
        run.log({k: v for k, v in metrics.items() if isinstance(v, float)})
        return metrics
    import jax.random as jr

    keys = jr.split(run.key, len(nv.STIMULI))
    per_video = {}
    for name, key in zip(nv.STIMULI, keys):
        stim = nv.generate(name, out / "stimuli", fps=cfg.fps, duration=cfg.duration, key=key)
        try:
            per_video[name] = run_video(stim.path, out, cfg, cfg.seed, stim.period, stem=name)
        except nv.VideoError as e:
            # e.g. optical flow on the grating (aperture problem): report it, go on.
            print(f"nrtjax visual_duet: {name}: {e}", file=sys.stderr)
            per_video[name] = {"error": str(e), "tempo_bpm": None, "motion_rhythm_plv": None}
            continue
        run.log({f"{name}/{k}": v for k, v in per_video[name].items() if isinstance(v, float)})
    return {
        "tempo_bpm": {k: v["tempo_bpm"] for k, v in per_video.items()},
        "motion_rhythm_plv": {k: v["motion_rhythm_plv"] for k, v in per_video.items()},
        "per_video": per_video,
    }


if __name__ == "__main__":
    main()
