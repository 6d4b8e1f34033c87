"""Pieces shared by the surrogate jobs: data and model configs, datasets, evaluation."""

import dataclasses

import jax.numpy as jnp
import jax.random as jr
import numpy as np

import nrtjax as nrt
from experiments._job import ConfigError, Run, check_choice, check_range
from nrtjax.plots.surrogate import plot_surrogate
from nrtjax.surrogate import HELDOUT_PATTERNS, TRAIN_PATTERNS, DatasetSpec


@dataclasses.dataclass
class DataConfig:
    n_train: int = 96
    n_heldout: int = 24
    n_val: int = 12
    duration: float = 30.0
    fs: float = 256.0
    tempo_min: float = 75.0
    tempo_max: float = 170.0
    heldout_tempos: list[float] = dataclasses.field(
        default_factory=lambda: [70.0, 175.0, 85.0, 110.0, 135.0, 160.0])
    cache_dir: str | None = "outputs/surrogate_data"

    def __post_init__(self):
        check_range("data.n_train", self.n_train, low=1)
        check_range("data.n_heldout", self.n_heldout, low=1)
        check_range("data.n_val", self.n_val, low=1)
        check_range("data.duration", self.duration, low=6.0)
        check_range("data.fs", self.fs, low=16.0)
        check_range("data.tempo_min", self.tempo_min, low=40.0, high=240.0)
        check_range("data.tempo_max", self.tempo_max, low=self.tempo_min, high=240.0)
        for t in self.heldout_tempos:
            check_range("data.heldout_tempos", t, low=40.0, high=240.0)


@dataclasses.dataclass
class ModelConfig:
    """The network (`nrt.surrogate.TCN`) and its physics references
    (`nrt.surrogate.Surrogate`); the defaults are theirs, the shipped configuration
    (tests/test_defaults.py compares them). The seed architecture is `hidden=128 heads=4
    dropout=0.15`."""

    hidden: int = 32
    n_blocks: int = 6
    kernel: int = 5
    dropout: float = 0.0
    heads: int = 2
    window: int = 128
    freq_center: float = 2.0
    freq_scale: float = 0.5
    freq_tau: float = 1.0
    lock_f0: float = 1.8
    lock_elasticity: float = 1.0
    tempo_clip: list[float] = dataclasses.field(default_factory=lambda: [75.0, 170.0])
    dtype: str = "float32"

    def __post_init__(self):
        check_range("model.hidden", self.hidden, low=1)
        check_range("model.n_blocks", self.n_blocks, low=1, high=12)
        check_range("model.kernel", self.kernel, low=1)
        check_range("model.dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        check_range("model.heads", self.heads, low=0)
        check_range("model.window", self.window, low=1)
        check_range("model.freq_scale", self.freq_scale, low=0.0, low_open=True)
        check_range("model.freq_tau", self.freq_tau, low=0.0, low_open=True, high=30.0)
        check_range("model.lock_f0", self.lock_f0, low=0.0, low_open=True, high=10.0,
                    hint="ASHLE's f0 in Hz")
        check_range("model.lock_elasticity", self.lock_elasticity, low=0.0, low_open=True)
        if len(self.tempo_clip) != 2:
            raise ConfigError(f"model.tempo_clip={list(self.tempo_clip)} must be [low, high] "
                              "BPM (the training tempi, e.g. [75, 170]).")
        check_range("model.tempo_clip[0]", self.tempo_clip[0], low=20.0, high=300.0)
        check_range("model.tempo_clip[1]", self.tempo_clip[1], low=self.tempo_clip[0],
                    low_open=True, high=300.0)
        check_choice("model.dtype", self.dtype, ("float32", "float64"))
        if self.heads and self.hidden % self.heads:
            raise ValueError(f"model.hidden={self.hidden} must be divisible by "
                             f"model.heads={self.heads}.")


NET_FIELDS = ("hidden", "n_blocks", "kernel", "dropout", "heads", "window")


def build_model(cfg: ModelConfig, *, fs: float, key) -> nrt.surrogate.Surrogate:
    """The plain TCN inside the physics references, as `cfg` says."""
    kw = dataclasses.asdict(cfg)
    net = nrt.surrogate.TCN(**{k: kw.pop(k) for k in NET_FIELDS}, dtype=jnp.dtype(kw.pop("dtype")),
                            key=key)
    return nrt.surrogate.Surrogate(net, fs=fs, **kw)


def heldout_spec(cfg: DataConfig) -> DatasetSpec:
    """Held-out songs: every pattern (incl. the never-trained ones) at fixed tempi, some
    outside the training range, from a separate key."""
    return DatasetSpec(n_songs=cfg.n_heldout, duration=cfg.duration, fs=cfg.fs,
                       patterns=tuple(TRAIN_PATTERNS) + tuple(HELDOUT_PATTERNS),
                       tempos=tuple(cfg.heldout_tempos))


def data_keys(key):
    """(train, held-out, validation) keys from a job's data key."""
    return tuple(jr.split(key, 3))


def datasets(cfg: DataConfig, *, key):
    """(training, held-out, validation) sets, each from its own key branch. Validation
    songs come from the training distribution; model choices are made on them, never on
    the held-out songs."""
    k_train, k_held, k_val = data_keys(key)
    def spec(n):
        return DatasetSpec(n_songs=n, duration=cfg.duration, fs=cfg.fs,
                                     tempo_range=(cfg.tempo_min, cfg.tempo_max))
    def load(n, k):
        return nrt.surrogate.load_or_make(spec(n), key=k, cache_dir=cfg.cache_dir)
    return load(cfg.n_train, k_train), heldout_data(cfg, key=k_held), load(cfg.n_val, k_val)


def heldout_data(cfg: DataConfig, *, key):
    return nrt.surrogate.load_or_make(heldout_spec(cfg), key=key, cache_dir=cfg.cache_dir)


def evaluate_and_plot(run: Run, model, data: dict, data_cfg: DataConfig) -> dict:
    """Section-7 metrics on `data` (all songs, and split by pattern and by whether the
    tempo lies outside `data_cfg`'s training range), the figure of the first song, and
    the per-song table."""
    fs = data_cfg.fs
    metrics, pred = nrt.surrogate.evaluate.evaluate_dataset(model, data, fs=fs)
    tempo = np.asarray(data["tempo_bpm"])
    unseen = np.isin(np.asarray(data["pattern"]), list(HELDOUT_PATTERNS))
    metrics["per_song_tempo_bpm"] = tempo.tolist()
    metrics["per_song_pattern"] = [str(p) for p in data["pattern"]]
    plv = np.asarray(metrics["tracking_plv_per_song"])
    outside = (tempo < data_cfg.tempo_min) | (tempo > data_cfg.tempo_max)
    metrics["tracking_plv_mean_unseen_patterns"] = float(plv[unseen].mean()) if unseen.any() else None
    metrics["tracking_plv_mean_outside_tempo_range"] = float(plv[outside].mean()) if outside.any() else None
    ts = np.arange(data["phase"].shape[1]) / fs
    truth = nrt.surrogate.SurrogateOutput(data["phase"][0], data["freq"][0], data["amp"][0])
    one = nrt.surrogate.SurrogateOutput(*(a[0] for a in pred))
    stim = data["stim_re"][0] + 1j * data["stim_im"][0]
    fig = plot_surrogate(ts, stim, truth, one, title=(
        f"held-out song 1: {data['pattern'][0]} at {tempo[0]:.0f} BPM; tracking PLV "
        f"{plv[0]:.4f}"))
    nrt.io.save_figure(fig, run.path("surrogate_vs_ashle.png"))
    nrt.io.write_columns(run.path("heldout_per_song.csv"), {
        "tempo_bpm": tempo, "pattern": np.asarray(metrics["per_song_pattern"]),
        "tracking_plv": plv, "plv_retention": np.asarray(metrics["plv_retention_per_song"]),
        "freq_mae_hz": np.asarray(metrics["freq_mae_hz_per_song"]),
        "amp_r": np.asarray(metrics["amp_r_per_song"])})
    return metrics
