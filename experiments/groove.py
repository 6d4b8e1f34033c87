"""Groove extraction: beats, tempo, drum events, AI drums and a mix preview from a recording."""

import dataclasses
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import soundfile as sf
from tqdm import tqdm

from experiments._job import (BaseConfig, ConfigError, Run, check_choice, check_range,
                             input_path, job)
from nrtjax.audio.groove_drums import INSTRUMENTS
from nrtjax.audio.groove import Groove, extract_groove, extract_groove_network
from nrtjax.audio.groove_mix import groove_audio_blocks
from nrtjax.io import atomic_path, save_figure, write_columns, write_csv, write_json
from nrtjax.plots.groove import groove_figure


@dataclasses.dataclass
class Config(BaseConfig):
    audio: str = input_path("")
    out: str = ""
    block_s: float = 30.0
    chunk_s: float = 20.0
    refine: bool = True
    drums_weight: float = 0.45
    tracker: str = "network"
    decoder: str = "oscillator"
    checkpoint: str = ""

    def __post_init__(self):
        if not self.audio:
            raise ConfigError("audio is required: nrtjax groove audio=PATH out=DIR.")
        check_choice("tracker", self.tracker, ("network", "onset"))
        check_choice("decoder", self.decoder, ("oscillator", "hmm"))
        check_range("block_s", self.block_s, low=1.0, high=600.0)
        check_range("chunk_s", self.chunk_s, low=1.0, high=600.0)
        check_range("drums_weight", self.drums_weight, low=0.0, high=1.0)
        check_range("seed", self.seed, low=0)


def output_dir(out: str, default: Path) -> Path:
    """The output folder, created and checked for writing before any compute."""
    directory = Path(out) if out else default
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".nrtjax-probe"):
            pass
    except OSError as e:
        raise PermissionError(f"Output directory {directory} is not writable ({e.strerror or e}). "
                              "Choose a writable out= directory.") from e
    return directory


def write_tables(g: Groove, directory: Path, stem: str) -> dict[str, Path]:
    tr, ev = g.tracking, g.events
    paths = {
        "beats": write_columns(directory / f"{stem}_beats.csv", {"time_s": g.beats}),
        "groove_metrics": write_columns(directory / f"{stem}_groove_metrics.csv", {
            "time_s": tr.ts, "phase_rad": tr.phase, "frequency_hz": tr.freq,
            "amplitude": tr.amp, "forcing_phase_rad": tr.forcing_phase}),
        "drum_events": write_csv(
            directory / f"{stem}_drum_events.csv", ["time_s", "instrument", "velocity", "step"],
            ((float(t), INSTRUMENTS[int(i)], float(v), int(s))
             for t, i, v, s in zip(ev.times, ev.instrument, ev.velocity, ev.step))),
    }
    return paths


def write_audio(g: Groove, info, directory: Path, stem: str, cfg: Config) -> dict[str, Path]:
    """AI drums and the mix preview, streamed block by block into atomic WAV files."""
    drums_path = directory / f"{stem}_ai_drums.wav"
    mix_path = directory / f"{stem}_mix_preview.wav"
    with atomic_path(drums_path) as tmp_d, atomic_path(mix_path) as tmp_m:
        with sf.SoundFile(str(tmp_d), "w", info.sr, 1, "PCM_16", format="WAV") as fd, \
                sf.SoundFile(str(tmp_m), "w", info.sr, 1, "PCM_16", format="WAV") as fm:
            for drums, mixed in groove_audio_blocks(g.events, info, g.envelope.peak,
                                                    block_s=cfg.block_s, seed=cfg.seed,
                                                    drums_weight=cfg.drums_weight):
                fd.write(drums)
                fm.write(mixed)
    return {"ai_drums": drums_path, "mix_preview": mix_path}


def tracker_summary(cfg: Config, beat_track) -> dict:
    """What found the beats: the tracker, and for the network its decoder and checkpoint."""
    if cfg.tracker == "onset":
        return {"tracker": "onset (onset envelope -> GrFNN + ASHLE -> DP alignment)"}
    from nrtjax.beats import SHIPPED, model_card

    path = Path(cfg.checkpoint) if cfg.checkpoint else SHIPPED
    card = model_card(path)
    return {"tracker": f"network (beat activation -> {cfg.decoder} decoder)",
            "decoder": cfg.decoder, "checkpoint": str(path),
            "checkpoint_corpus_sha256": card.get("corpus", {}).get("manifest_sha256"),
            "n_downbeats": int(beat_track.downbeats.size),
            "decoder_tempo_bpm": float(beat_track.tempo_bpm)}


def summary(g: Groove, info, paths: dict, seconds: float, cfg: Config, beat_track=None) -> dict:
    ev = g.events
    if cfg.tracker == "network":
        readout = f"{cfg.decoder} decoder of the beat activation"
    else:
        readout = "offline (refined)" if cfg.refine else "causal (motor phase)"
    return {**tracker_summary(cfg, beat_track),
        "file": str(info.path), "duration_s": info.duration, "sample_rate": info.sr,
        "channels": info.channels, "tempo_bpm": g.tempo_bpm,
        "global_tempo_bpm": 60 * g.tracking.tempo_hz, "n_beats": int(g.beats.size),
        "beat_phase_offset_rad": g.phase_offset, "downbeat_index": ev.downbeat,
        "groove_pattern": ev.pattern.round(4).tolist(),
        "n_events": {name: int(np.sum(ev.instrument == i)) for i, name in enumerate(INSTRUMENTS)},
        "beats_readout": readout,
        "compute_seconds": seconds, "realtime_factor": info.duration / seconds,
        "outputs": {k: str(v) for k, v in paths.items()},
    }


@job("groove", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    directory = run.dir  # out= is the run folder (staged, then moved by experiments/_job.py)
    stem = Path(cfg.audio).stem
    start = time.perf_counter()
    with tqdm(total=1, desc="groove", unit="chunk", leave=False) as bar:
        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

        beat_track = None
        if cfg.tracker == "network":
            g, info, beat_track = extract_groove_network(
                cfg.audio, checkpoint=cfg.checkpoint or None, decoder=cfg.decoder,
                block_s=cfg.block_s, chunk_s=cfg.chunk_s, progress=progress)
        else:
            g, info = extract_groove(cfg.audio, refine=cfg.refine, block_s=cfg.block_s,
                                     chunk_s=cfg.chunk_s, progress=progress)
    seconds = time.perf_counter() - start
    fig = groove_figure(g, title=Path(cfg.audio).name)
    paths = write_tables(g, directory, stem)
    paths |= write_audio(g, info, directory, stem, cfg)
    paths["groove_analysis"] = save_figure(fig, directory / f"{stem}_groove_analysis.png")
    paths["summary"] = directory / f"{stem}_summary.json"
    metrics = summary(g, info, {k: run.final_path(v) for k, v in paths.items()}, seconds, cfg,
                      beat_track)
    write_json(paths["summary"], metrics)
    run.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    print(f"nrtjax groove: {info.path.name}: {g.tempo_bpm:.1f} BPM, {g.beats.size} beats")
    return {k: v for k, v in metrics.items() if k != "outputs"} | {"out": str(run.final_dir)}


if __name__ == "__main__":
    main()
