"""EEG-driven neural duet: biomarkers from real EEG or the Epoc X twin steer ASHLE and Lorenz.

`nrtjax eeg_duet eeg=PATH out=DIR` streams a recording (any format MNE reads) in blocks:
band powers -> biomarkers (normalised to the first `baseline_s` seconds) -> duet parameters
-> the duet engine. Without `eeg=`, a held-out twin subject is recorded in each of the five
states (FIF files written and read back like real recordings) and streamed, and the state
classifier trained on another twin subject is scored on its windows.
"""

import dataclasses
import gc
import sys
import warnings
from pathlib import Path

import jax.random as jr
import numpy as np
from tqdm import tqdm

from experiments._job import BaseConfig, ConfigError, Run, check_range, input_path, job
from nrtjax.audio.duet import DuetEngine, DuetParams
from nrtjax.audio.io import write_wav
from nrtjax.eeg import artifacts, biomarkers as bm, classify, io, mapping, stream, twin
from nrtjax.io import save_figure, write_columns
from nrtjax.plots.eeg import eeg_dashboard


# DuetEngine's default control rate (fs_sim), for checking block sizes before any import
# of the engine (tests/test_job_contract.py checks that they agree).
CONTROL_HZ = 200


@dataclasses.dataclass
class Config(BaseConfig):
    eeg: str | None = input_path(suffixes=(".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".vhdr", ".set", ".cnt"))
    out: str | None = None
    channels: list[str] | None = None
    baseline_s: float = 30.0
    window_s: float = 2.0
    block_s: float = 0.25
    tau_s: float = 2.0
    line_freq: float | None = 50.0
    max_seconds: float | None = None
    twin_seconds: float = 30.0
    twin_baseline_s: float = 60.0
    train_seconds: float = 40.0
    train_subjects: int = 3
    sr: int = 22050
    scale: str = "minor_pentatonic"
    gamma: float = 1.0
    allow_truncated: bool = False

    def __post_init__(self):
        check_range("baseline_s", self.baseline_s, low=self.window_s)
        check_range("window_s", self.window_s, low=1.0, high=30.0)
        check_range("block_s", self.block_s, low=0.01, high=2.0)
        fs_sim = CONTROL_HZ
        if abs(self.block_s * fs_sim - round(self.block_s * fs_sim)) > 1e-6:
            raise ConfigError(f"block_s={self.block_s!r} must be a multiple of 1/{fs_sim} s "
                              f"(the duet's control rate), e.g. 0.25.")
        check_range("tau_s", self.tau_s, low=0.0, high=600.0)
        if self.line_freq is not None:
            check_range("line_freq", self.line_freq, low=0.0, low_open=True)
        if self.max_seconds is not None:
            check_range("max_seconds", self.max_seconds, low=self.window_s)
        check_range("twin_seconds", self.twin_seconds, low=self.window_s + self.block_s)
        check_range("twin_baseline_s", self.twin_baseline_s, low=2 * self.window_s)
        check_range("train_seconds", self.train_seconds, low=4 * self.window_s)
        check_range("train_subjects", self.train_subjects, low=1, high=50)
        check_range("sr", self.sr, low=8000, high=192000)
        check_range("gamma", self.gamma, low=0.0, high=100.0)
        if self.eeg is not None and not self.eeg:
            raise ConfigError("eeg='' is empty: give a file path or leave eeg unset.")


def _train_classifier(cfg: Config, key) -> classify.StateClassifier:
    """LDA on `train_subjects` twin subjects (pooled: the classifier sees several
    individual alpha frequencies), each with its own baseline."""
    feats, labels = [], []
    for k in jr.split(key, cfg.train_subjects):
        k1, k2, k3 = jr.split(k, 3)
        subj = twin.twin_subject(key=k1)
        base = twin.simulate_twin([twin.BASELINE], seconds=cfg.twin_baseline_s, key=k2,
                                  subject=subj)
        rec = twin.simulate_twin(twin.STATES, seconds=cfg.train_seconds, key=k3, subject=subj)
        an, _ = bm.analyse(rec, baseline=base, window_s=cfg.window_s, line_freq=cfg.line_freq)
        feats.append(an.features)
        labels.append(twin.state_labels(rec, an.times, cfg.window_s))
    return classify.StateClassifier.fit(np.concatenate(feats), np.concatenate(labels),
                                        twin.STATES)


def _stream_one(run: Run, cfg: Config, stem: str, rec, baseline, classifier, engine) -> tuple:
    """Stream `rec` (good channels) and write the STEM_* files; returns (result, stats)."""
    streamer = stream.EEGStreamer(rec.fs, len(rec.ch_names), baseline, classifier=classifier,
                                  window_s=cfg.window_s, tau_s=cfg.tau_s,
                                  line_freq=cfg.line_freq)
    n_blocks = int(rec.duration / cfg.block_s)
    # Collect now and freeze the survivors, so that no full garbage collection over the
    # figures and arrays of earlier files lands inside a timed block.
    gc.collect()
    gc.freeze()
    try:
        with tqdm(total=n_blocks, desc=f"eeg_duet {stem}", unit="block", leave=False) as bar:
            base = DuetParams(scale=cfg.scale, gamma=cfg.gamma)
            result = stream.stream_duet(rec, streamer, engine, base, block_s=cfg.block_s,
                                        progress=lambda n: bar.update(1))
    finally:
        gc.unfreeze()
    stats = stream.latency_stats(result.latency_s, cfg.block_s)
    write_wav(run.path(f"{stem}_duet.wav"), result.audio, result.sr)
    cols = {"time_s": result.times}
    cols.update({k: result.normalised[:, j] for j, k in enumerate(bm.BIOMARKERS)})
    write_columns(run.path(f"{stem}_biomarkers.csv"), cols)
    pcols = {"time_s": result.times, **result.params, "state": result.states}
    write_columns(run.path(f"{stem}_params.csv"), pcols)
    fig = eeg_dashboard(rec, result, title=f"EEG-driven duet: {stem}", stats=stats)
    save_figure(fig, run.path(f"{stem}_dashboard.png"))
    return result, stats


def _pooled(stats: list[dict], results: list, block_s: float) -> dict:
    lat = np.concatenate([r.latency_s for r in results])
    out = stream.latency_stats(lat, block_s)
    out["per_file"] = stats
    return out


def _run_file(run: Run, cfg: Config, engine, classifier, rec) -> dict:
    if cfg.max_seconds is not None and rec.duration > cfg.max_seconds:
        rec = dataclasses.replace(rec, data=rec.data[:, :int(cfg.max_seconds * rec.fs)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", artifacts.BadChannelWarning)
        an, base = bm.analyse(rec, baseline=cfg.baseline_s, window_s=cfg.window_s,
                              line_freq=cfg.line_freq)
    for w in caught:
        print(f"nrtjax eeg_duet: warning: {w.message}", file=sys.stderr)
    good = rec.select(list(an.channels))
    name = Path(cfg.eeg).name
    stem = Path(name[:-3] if name.endswith(".gz") else name).stem
    result, stats = _stream_one(run, cfg, stem, good, base, classifier, engine)
    counts = np.bincount(result.states[result.states >= 0], minlength=len(twin.STATES))
    return {**stats, "eeg": str(cfg.eeg), "channels": list(an.channels),
            "bad_channels": an.bad_channels, "duration_s": rec.duration,
            "biomarker_median": dict(zip(bm.BIOMARKERS, np.median(result.normalised, 0))),
            "twin_state_fraction": dict(zip(twin.STATES, counts / max(counts.sum(), 1)))}


def _run_twin(run: Run, cfg: Config, engine, classifier, key) -> dict:
    k1, k2 = jr.split(key)
    subj = twin.twin_subject(key=k1)
    base_rec = twin.simulate_twin([twin.BASELINE], seconds=cfg.twin_baseline_s,
                                  key=jr.fold_in(k2, 99), subject=subj)
    base_path = io.write_eeg(base_rec, run.path("twin_baseline_raw.fif"))
    base_rec = io.load_eeg(base_path)
    truth, pred, results, stats, per_state = [], [], [], [], {}
    for i, state in enumerate(twin.STATES):
        rec = twin.simulate_twin([state], seconds=cfg.twin_seconds, key=jr.fold_in(k2, i),
                                 subject=subj)
        rec = io.load_eeg(io.write_eeg(rec, run.path(f"twin_{state}_raw.fif")))
        an, base = bm.analyse(rec, baseline=base_rec, window_s=cfg.window_s,
                              line_freq=cfg.line_freq)
        truth.append(np.full(len(an.times), i))
        pred.append(classifier.predict(an.features))
        result, st = _stream_one(run, cfg, f"twin_{state}", rec, base, classifier, engine)
        results.append(result)
        stats.append({"stem": f"twin_{state}", **st})
        # Blocks after the first full window and three smoothing time constants (or the
        # last block, for recordings shorter than that).
        settled = result.times >= min(cfg.window_s + 3 * cfg.tau_s, result.times[-1])
        per_state[state] = {k: float(np.median(v[settled]))
                            for k, v in result.params.items()}
        per_state[state]["stream_accuracy"] = float(np.mean(result.states[settled] == i))
    cm = classify.confusion_matrix(np.concatenate(truth), np.concatenate(pred), 5)
    return {**_pooled(stats, results, cfg.block_s), "states": list(twin.STATES),
            "confusion_matrix": cm, "window_accuracy": float(np.trace(cm) / cm.sum()),
            "params_by_state": per_state, "directions_ok": _directions(per_state)}


def _directions(p: dict) -> dict:
    b, crit = mapping.BASE, mapping.LORENZ_CRITICAL_RHO
    return {
        "stressed": bool(p["stressed"]["rho"] > crit and p["stressed"]["lambda2"] > b["lambda2"]),
        "relaxed_awake": bool(p["relaxed_awake"]["lambda2"] < b["lambda2"]
                              and p["relaxed_awake"]["rho"] < crit),
        "meditative": bool(p["meditative"]["lambda2"] < b["lambda2"]
                           and p["meditative"]["rho"] < crit),
        "focused": bool(p["focused"]["lambda1"] > b["lambda1"]
                        and p["focused"]["tempo_bpm"] > b["tempo_bpm"]),
        "drowsy": bool(p["drowsy"]["lambda1"] < b["lambda1"]
                       and p["drowsy"]["tempo_bpm"] < b["tempo_bpm"]),
    }


@job("eeg_duet", Config)
def main(run: Run) -> dict:
    cfg = run.cfg
    # The recording is read (and checked) before the classifier is trained.
    rec = None if cfg.eeg is None else io.load_eeg(cfg.eeg, channels=cfg.channels,
                                                   allow_truncated=cfg.allow_truncated)
    k_train, k_test = jr.split(run.key)
    classifier = _train_classifier(cfg, k_train)
    engine = DuetEngine(sr=cfg.sr, seed=cfg.seed)
    if cfg.eeg is None:
        metrics = _run_twin(run, cfg, engine, classifier, k_test)
    else:
        metrics = _run_file(run, cfg, engine, classifier, rec)
    run.log({k: v for k, v in metrics.items() if isinstance(v, float)})
    return metrics


if __name__ == "__main__":
    main()
