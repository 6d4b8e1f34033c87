"""Beats from audio: the network's activation ([`beat_activation`][]), decoded by the
oscillators or the bar-pointer HMM ([`track_beats`][])."""

from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._types import BeatActivation, BeatTrack
from .checkpoint import load_model
from .features import FPS, spectrogram
from .network import BeatEnsemble, BeatNet

DECODERS = ("oscillator", "hmm")


@eqx.filter_jit
def _activations(model: BeatNet | BeatEnsemble, x: Float[Array, "bands time"], length):
    return model.outputs(x, length=length)


def _bucket(frames: int) -> int:
    """The padded length: the next power of two from 1024 frames on (few compilations,
    at most twice the work)."""
    return max(1024, 1 << (int(frames) - 1).bit_length())


def activation_from_spectrogram(model: BeatNet | BeatEnsemble, x: np.ndarray) -> BeatActivation:
    """The network's activations (and its tempo head's probabilities, if it has one) on
    a spectrogram `(bands, frames)` from [`spectrogram`][nrtjax.beats.features.spectrogram]."""
    n = x.shape[1]
    padded = np.zeros((x.shape[0], _bucket(n)), np.float32)
    padded[:, :n] = x
    act, tempo = _activations(model, jnp.asarray(padded), jnp.asarray(n))
    act = np.asarray(act, np.float64)[:, :n]
    return BeatActivation(act[0], act[1], FPS,
                          None if tempo is None else np.asarray(tempo, np.float64))


def beat_activation(audio: np.ndarray, sr: int, *, checkpoint: str | Path | None = None,
                    model: BeatNet | BeatEnsemble | None = None) -> BeatActivation:
    """Frame-wise beat and downbeat activations of a recording at 100 frames/s.

    **Arguments:**

    - `audio`: mono samples, shape `(samples,)` (multichannel: average the channels).
    - `sr`: the sampling rate in Hz.
    - `checkpoint`: a `.eqx` file saved by `nrtjax train_beats` (its `.json` beside it);
        `None` loads the checkpoint shipped with nrtjax.
    - `model`: an already loaded [`BeatNet`][nrtjax.beats.BeatNet] or
        [`BeatEnsemble`][nrtjax.beats.BeatEnsemble] (then `checkpoint` is ignored).

    **Returns:** a [`BeatActivation`][nrtjax.beats.BeatActivation].

    **Raises:** `ValueError` for empty, multichannel or non-finite audio;
    `FileNotFoundError`/`ValueError` for a missing or mismatched checkpoint.
    """
    model = load_model(checkpoint) if model is None else model
    return activation_from_spectrogram(model, spectrogram(audio, sr))


def decode(act: BeatActivation, decoder: str = "oscillator") -> BeatTrack:
    """Beats from an activation with the named decoder (`"oscillator"`: GrFNN + ASHLE,
    [`decode_oscillator`][nrtjax.beats.decode.decode_oscillator]; `"hmm"`: the bar-pointer HMM,
    [`decode_hmm`][nrtjax.beats.hmm.decode_hmm])."""
    if decoder == "oscillator":
        from .decode import decode_oscillator

        return decode_oscillator(act)
    if decoder == "hmm":
        from .hmm import decode_hmm

        return decode_hmm(act)
    raise ValueError(f"decoder={decoder!r} is not a beat decoder: choose one of {list(DECODERS)}.")


def track_beats(audio: np.ndarray, sr: int, *, decoder: str = "oscillator",
                checkpoint: str | Path | None = None,
                model: BeatNet | BeatEnsemble | None = None) -> BeatTrack:
    """Beats, downbeats and tempo of a recording: [`beat_activation`][] then the decoder.

    **Arguments:** as [`beat_activation`][], and `decoder`: `"oscillator"` (default) or
    `"hmm"`.

    **Returns:** a [`BeatTrack`][nrtjax.beats.BeatTrack].
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder={decoder!r} is not a beat decoder: choose one of "
                         f"{list(DECODERS)}.")
    return decode(beat_activation(audio, sr, checkpoint=checkpoint, model=model), decoder)
