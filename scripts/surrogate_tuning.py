"""The surrogate's tuning sets (never the held-out songs): the numbers behind docs/surrogate.md's
model choices.

usage:
  .venv/bin/python scripts/surrogate_tuning.py checkpoints [shipped|PATH.eqx ...]
      Section-7 metrics of each checkpoint on the 64-song tuning set (the 6 training
      patterns at 65-182 BPM, key 778): tracking PLV over the songs where ASHLE locks,
      retention range, frequency MAE over all songs and above 170 BPM.
  .venv/bin/python scripts/surrogate_tuning.py ashle [name=value ...]
      How soon ASHLE locks on 128 songs of the training patterns at 65-180 BPM (key 12345),
      with ASHLE_SETTINGS / FORCING_SETTINGS entries overridden, e.g. `forcing=4.0`,
      `lambda1=1.5`, `fade=2.0,4.0`: the songs with a 1 s window after 5 s where ASHLE's
      PLV to its forcing is below 0.9, and those whose forcing still changes level (its
      median frequency in a 1 s window more than 12 % from the song's final one) after 3 s.
Datasets are cached in outputs/surrogate_data like the training sets.
"""

import sys

import jax.random as jr
import numpy as np

import nrtjax as nrt
from nrtjax.surrogate import TRAIN_PATTERNS, DatasetSpec, load_or_make
from nrtjax.surrogate import data as surrogate_data
from nrtjax.surrogate.evaluate import LOCK_PLV, evaluate_dataset

FS = 256.0
CACHE = "outputs/surrogate_data"


def checkpoints(paths: list[str]) -> None:
    spec = DatasetSpec(n_songs=64, duration=30.0, fs=FS, tempo_range=(65.0, 182.0),
                       patterns=tuple(TRAIN_PATTERNS))
    data = load_or_make(spec, key=jr.PRNGKey(778), cache_dir=CACHE)
    tempo = np.asarray(data["tempo_bpm"])
    print("| checkpoint | tuning PLV mean (min), locked songs | retention range | "
          "freq MAE all / > 170 BPM (Hz) | PLV of the songs ASHLE does not lock |")
    print("|---|---|---|---|---|")
    for path in paths or ["shipped"]:
        model = nrt.surrogate.load(None if path == "shipped" else path)
        m, _ = evaluate_dataset(model, data, fs=FS)
        plv = np.asarray(m["tracking_plv_per_song"])
        ret = np.asarray(m["plv_retention_per_song"])
        mae = np.asarray(m["freq_mae_hz_per_song"])
        locked = np.asarray(m["gt_stim_plv_per_song"]) >= LOCK_PLV
        top = locked & (tempo > 170)
        print(f"| {path} | {plv[locked].mean():.4f} ({plv[locked].min():.4f}), {locked.sum()}/"
              f"{locked.size} | {ret[locked].min():.3f}-{ret[locked].max():.3f} | "
              f"{mae.mean():.4f} / {mae[top].mean():.4f} | "
              f"{', '.join(f'{p:.3f}' for p in plv[~locked]) or '-'} |")


def ashle(overrides: list[str]) -> None:
    for item in overrides:
        name, _, value = item.partition("=")
        table = (surrogate_data.ASHLE_SETTINGS if name in surrogate_data.ASHLE_SETTINGS
                 else surrogate_data.FORCING_SETTINGS)
        if name not in table:
            sys.exit(f"Unknown setting {name!r}; choose from ASHLE_SETTINGS "
                     f"{sorted(surrogate_data.ASHLE_SETTINGS)} or FORCING_SETTINGS "
                     f"{sorted(surrogate_data.FORCING_SETTINGS)}.")
        parts = [float(v) for v in value.split(",")]
        table[name] = tuple(parts) if len(parts) > 1 else parts[0]
    spec = DatasetSpec(n_songs=128, duration=30.0, fs=FS, tempo_range=(65.0, 180.0),
                       patterns=tuple(TRAIN_PATTERNS))
    # The cache name hashes both settings tables, so every override gets its own file.
    data = load_or_make(spec, key=jr.PRNGKey(12345), cache_dir=CACHE)
    w = int(FS)
    forcing = data["stim_re"] + 1j * data["stim_im"]
    late_lock = late_level = 0
    for f_song, phase in zip(forcing, data["phase"]):
        n = (f_song.size - 1) // w
        inst = np.angle(f_song[1:] * np.conj(f_song[:-1])) * FS / (2 * np.pi)
        level = np.array([np.median(inst[k * w:(k + 1) * w]) for k in range(n)])
        moved = np.nonzero(np.abs(level / np.median(level[-10:]) - 1) > 0.12)[0]
        late_level += bool(moved.size) and moved.max() + 1 > 3
        rel = np.exp(1j * (phase - np.angle(f_song)))
        plv = np.abs(rel[: n * w].reshape(n, w).mean(axis=1))
        slow = np.nonzero(plv < 0.9)[0]
        late_lock += bool(slow.size) and slow.max() + 1 > 5
    print(f"settings {overrides or 'shipped'}: {late_lock}/128 songs with an unlocked 1 s window "
          f"after 5 s; {late_level}/128 whose forcing changes level after 3 s")


MODES = {"checkpoints": checkpoints, "ashle": ashle}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        sys.exit(__doc__)
    MODES[sys.argv[1]](sys.argv[2:])
