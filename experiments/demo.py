"""The built-in demo: groove extraction on a generated clip, then a short neural duet."""

import dataclasses

import matplotlib

matplotlib.use("Agg")
import numpy as np

from experiments import duet as duet_job
from experiments._job import BaseConfig, Run, check_range, job
from experiments.groove import Config as GrooveConfig
from experiments.groove import write_audio, write_tables
from nrtjax.audio import synth, write_wav
from nrtjax.audio.groove import extract_groove
from nrtjax.io import save_figure, write_json
from nrtjax.plots.groove import groove_figure


@dataclasses.dataclass
class Config(BaseConfig):
    clip_seconds: float = 20.0
    tempo_start: float = 96.0
    tempo_end: float = 108.0
    duet_seconds: float = 8.0
    duet_tempo: float = 110.0
    rho: float = 28.0
    sr: int = 22050

    def __post_init__(self):
        check_range("clip_seconds", self.clip_seconds, low=4.0, high=300.0)
        check_range("tempo_start", self.tempo_start, low=50.0, high=200.0)
        check_range("tempo_end", self.tempo_end, low=50.0, high=200.0)
        check_range("duet_seconds", self.duet_seconds, low=1.0, high=120.0)
        check_range("duet_tempo", self.duet_tempo, low=30.0, high=300.0)
        check_range("rho", self.rho, low=0.0, high=100.0, low_open=True)
        check_range("sr", self.sr, low=8000, high=48000)


def demo_clip(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """A generated song with known beats: drums (synth voices), a bass on the beats, and
    a tempo that drifts from `tempo_start` to `tempo_end` (the clip is made here at run
    time, so no recording and no licence is shipped). Returns `(audio, beat_times)`."""
    rng = np.random.default_rng(cfg.seed)
    n = int(cfg.clip_seconds * cfg.sr)
    t = np.arange(0, cfg.clip_seconds, 1e-3)
    bpm = cfg.tempo_start + (cfg.tempo_end - cfg.tempo_start) * t / cfg.clip_seconds
    phase = np.cumsum(bpm / 60.0) * 1e-3
    beats = np.interp(np.arange(0.5, phase[-1] - 0.5), phase, t)
    y = np.zeros(n)
    bass = [45, 45, 48, 43]
    for k, b in enumerate(beats):
        hits = [(b, synth.kick if k % 2 == 0 else synth.snare, 0.9 if k % 4 == 0 else 0.7)]
        nxt = beats[k + 1] if k + 1 < beats.size else b + 60 / cfg.tempo_end
        hits += [(b, synth.hat, 0.6), (0.5 * (b + nxt), synth.hat, 0.4)]
        for when, voice, vel in hits:
            v = voice(vel, cfg.sr, key=rng)
            i = int(round(when * cfg.sr))
            y[i:i + v.size] += v[: max(0, n - i)]
        tone = synth.fm_tone(synth.midi_to_hz(bass[(k // 4) % 4]), 0.5, 0.3, cfg.sr)
        i = int(round(b * cfg.sr))
        y[i:i + tone.size] += 0.5 * tone[: max(0, n - i)]
    return 0.89 * y / np.max(np.abs(y)), beats


@job("demo", Config)
def main(run: Run) -> dict:
    from nrtjax.audio.beat_eval import f_measure

    cfg = run.cfg
    audio, true_beats = demo_clip(cfg)
    clip = write_wav(run.path("demo_clip.wav"), audio, cfg.sr)
    out = run.dir / "groove"
    with run.phase("groove extraction"):
        g, info = extract_groove(clip)
    write_tables(g, out, "demo_clip")
    write_audio(g, info, out, "demo_clip", GrooveConfig(audio=str(clip), seed=cfg.seed))
    save_figure(groove_figure(g, title="demo clip"), out / "demo_clip_groove_analysis.png")
    metrics = {"groove_tempo_bpm": g.tempo_bpm, "groove_beats": int(g.beats.size),
               "groove_beat_f_measure": f_measure(true_beats, g.beats)}
    write_json(out / "demo_clip_summary.json", metrics)
    dcfg = duet_job.Config(tempo_bpm=cfg.duet_tempo, rho=cfg.rho, duration=cfg.duet_seconds,
                           sr=44100, seed=cfg.seed)
    dm = duet_job.play_duet(run, dcfg)
    metrics |= {"duet_tempo_bpm": dm["tempo_bpm_achieved"], "duet_notes": dm["n_notes"]}
    print(f"groove: {g.tempo_bpm:.1f} BPM, {g.beats.size} beats (F = "
          f"{metrics['groove_beat_f_measure']:.3f} against the clip's true beats); outputs in "
          f"{run.final_path(out)}")
    print(f"duet: {dm['n_notes']} notes at {dm['tempo_bpm_achieved']:.1f} BPM; "
          f"listen to {run.final_path(run.dir / 'duet.wav')}")
    run.log(metrics)
    return metrics


if __name__ == "__main__":
    main()
