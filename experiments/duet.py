"""The neural duet: an ASHLE drummer and a Lorenz melodist play together (WAV, stems, figure)."""

import dataclasses
import time

import numpy as np
from tqdm import tqdm

import nrtjax as nrt
from experiments._job import BaseConfig, ConfigError, Run, check_choice, check_range, job
from nrtjax.audio import melody, mix, write_wav
from nrtjax.audio.duet import BlockInfo, DuetEngine, DuetParams


# DuetEngine's default control rate (fs_sim), for checking block sizes before any import
# of the engine (tests/test_job_contract.py checks that they agree).
CONTROL_HZ = 200


@dataclasses.dataclass
class Config(BaseConfig):
    tempo_bpm: float = 120.0
    lambda1: float = 4.0
    lambda2: float = 2.0
    rho: float = 28.0
    scale: str = "minor_pentatonic"
    root: int = 57
    octave: int = 0
    lorenz_rate: float = 0.25
    duration: float = 30.0
    block_seconds: float = 0.25
    sr: int = 44100
    stimulus_bpm: float = 0.0
    forcing_gain: float = 1.0

    def __post_init__(self):
        check_range("tempo_bpm", self.tempo_bpm, low=30.0, high=300.0)
        check_range("lambda1", self.lambda1, low=0.0, high=1e3)
        check_range("lambda2", self.lambda2, low=0.0, high=1e3)
        check_range("rho", self.rho, low=0.0, high=100.0, low_open=True)
        check_choice("scale", self.scale, sorted(melody.SCALES))
        check_range("root", self.root, low=24, high=96)
        check_range("octave", self.octave, low=-3, high=3)
        check_range("lorenz_rate", self.lorenz_rate, low=0.0, high=2.0, low_open=True)
        check_range("duration", self.duration, low=1.0, high=3600.0)
        check_range("block_seconds", self.block_seconds, low=0.005, high=10.0)
        fs_sim = CONTROL_HZ
        steps, total = self.block_seconds * fs_sim, self.duration * fs_sim
        if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
            raise ConfigError(f"block_seconds={self.block_seconds!r} must be a multiple of "
                              f"1/{fs_sim} s (the duet's control rate), e.g. 0.25.")
        if abs(total - round(total)) > 1e-6 or round(total) % round(steps):
            raise ConfigError(f"duration={self.duration!r} must be a whole number of blocks "
                              f"of block_seconds={self.block_seconds!r}.")
        check_choice("sr", self.sr, (16000, 22050, 32000, 44100, 48000))
        check_range("stimulus_bpm", self.stimulus_bpm, low=0.0, high=300.0)
        check_range("forcing_gain", self.forcing_gain, low=0.0, high=100.0)
        check_range("seed", self.seed, low=0)


def _params(cfg: Config) -> DuetParams:
    return DuetParams(tempo_bpm=cfg.tempo_bpm, lambda1=cfg.lambda1, lambda2=cfg.lambda2,
                      rho=cfg.rho, scale=cfg.scale, root=cfg.root, octave=cfg.octave,
                      lorenz_rate=cfg.lorenz_rate, forcing_gain=cfg.forcing_gain)


def _stream(engine: DuetEngine, params: DuetParams, cfg: Config):
    """Play the duet block by block (as a live stream would), timing each block."""
    n_blocks = engine.block_steps(cfg.duration) // engine.block_steps(cfg.block_seconds)
    forcing = None
    if cfg.stimulus_bpm > 0:
        forcing = nrt.click_train(cfg.stimulus_bpm / 60.0, cfg.duration, float(engine.fs_sim))
    state, infos, latency = engine.init(params), [], []
    for _ in tqdm(range(n_blocks), desc="duet", unit="block", leave=False):
        t0 = time.perf_counter()
        _, state, info = engine.process_block(state, params, cfg.block_seconds, forcing)
        latency.append(time.perf_counter() - t0)
        infos.append(info)
    return BlockInfo.join(infos), np.asarray(latency)


def _write_audio(run: Run, info: BlockInfo, params: DuetParams, sr: int) -> float:
    """duet.wav and the two stems, all scaled by one gain (stems sum to the mix), -1 dBFS peak."""
    drums = info.drums * mix.db_to_gain(params.drum_gain_db)
    tune = info.melody * mix.db_to_gain(params.melody_gain_db)
    full = mix.mix([drums, tune])
    peak = max(np.max(np.abs(a)) for a in (full, drums, tune))
    if peak == 0:
        raise ValueError("The duet produced silence; lengthen duration (the first beat "
                         "comes after one beat period).")
    gain = mix.db_to_gain(-1.0) / peak
    write_wav(run.path("duet.wav"), full * gain, sr)
    write_wav(run.path("duet_drums.wav"), drums * gain, sr)
    write_wav(run.path("duet_melody.wav"), tune * gain, sr)
    return mix.peak_dbfs(full * gain)


def _metrics(cfg: Config, info: BlockInfo, latency: np.ndarray, peak: float) -> dict:
    settled = info.beats[info.beats > cfg.duration / 2]
    ibi = np.diff(settled)
    pitches = [int(n.pitch) for n in info.notes]
    return {
        "tempo_bpm_requested": cfg.tempo_bpm,
        "tempo_bpm_achieved": float(60.0 / np.median(ibi)) if ibi.size else float("nan"),
        "tempo_bpm_motor_final": float(60.0 * info.f[-1]),
        "stimulus_bpm": cfg.stimulus_bpm,
        "n_beats": int(info.beats.size),
        "n_notes": len(info.notes),
        "n_drum_hits": len(info.drum_events),
        "n_distinct_pitches": len(set(pitches)),
        "distinct_pitches_last_16_notes": len(set(pitches[-16:])),
        "peak_dbfs": peak,
        "duration_s": cfg.duration,
        "latency_ms_p50": float(1e3 * np.median(latency[1:])) if latency.size > 1 else None,
        "latency_ms_p99": float(1e3 * np.percentile(latency[1:], 99)) if latency.size > 1 else None,
        "first_block_ms": float(1e3 * latency[0]),
        "realtime_factor": float(cfg.duration / latency.sum()),
        "realtime_factor_warm": (float(cfg.duration / latency[1:].sum())
                                 if latency.size > 1 else None),
        "rho": cfg.rho,
        "calm": bool(cfg.rho < melody.hopf_rho()),
    }


def _write_tables(run: Run, info: BlockInfo) -> None:
    nrt.io.write_csv(run.path("duet_notes.csv"), ["time_s", "pitch", "velocity", "length_s"],
                     [tuple(n) for n in info.notes])
    nrt.io.write_csv(run.path("duet_drum_events.csv"), ["time_s", "instrument", "velocity"],
                     [tuple(e) for e in info.drum_events])
    nrt.io.write_columns(run.path("duet_beats.csv"), {"time_s": info.beats})


def play_duet(run: Run, cfg: Config) -> dict:
    """Stream the duet of `cfg` into `run.dir`: duet.wav, the tables, duet.png; returns the
    metrics. The `duet` job, and the demo's duet, are this."""
    from nrtjax.plots.duet import duet_figure

    params = _params(cfg)
    engine = DuetEngine(sr=cfg.sr, seed=cfg.seed)
    engine.block_steps(cfg.block_seconds)
    if engine.block_steps(cfg.duration) % engine.block_steps(cfg.block_seconds):
        raise ValueError(f"duration={cfg.duration} must be a whole number of blocks of "
                         f"block_seconds={cfg.block_seconds}.")
    info, latency = _stream(engine, params, cfg)
    peak = _write_audio(run, info, params, cfg.sr)
    _write_tables(run, info)
    metrics = _metrics(cfg, info, latency, peak)
    full, sr = nrt.audio.load_audio(run.dir / "duet.wav", min_duration=0.0)
    title = (f"neural duet: {cfg.tempo_bpm:g} BPM, lambda1={cfg.lambda1:g}, lambda2={cfg.lambda2:g}, "
             f"rho={cfg.rho:g} ({'calm' if metrics['calm'] else 'chaotic'}), {cfg.scale}")
    if cfg.stimulus_bpm > 0:
        title += f"; listening to a {cfg.stimulus_bpm:g} BPM click track"
    fig = duet_figure(info, tempo_bpm=cfg.tempo_bpm, audio=full, sr=sr, title=title)
    nrt.io.save_figure(fig, run.path("duet.png"))
    return metrics


@job("duet", Config)
def main(run: Run) -> dict:
    metrics = play_duet(run, run.cfg)
    run.log(metrics)
    return metrics


if __name__ == "__main__":
    main()
