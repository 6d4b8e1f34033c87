"""Beat tracking: a learned beat activation decoded by oscillators.

A TCN ([`BeatNet`][]) turns a mel spectrogram at 100 frames/s ([`spectrogram`][]) into
beat and downbeat activations ([`beat_activation`][]); a decoder turns them into beats
([`track_beats`][]); several networks can be averaged ([`BeatEnsemble`][]). The trained
network ships with nrtjax (`checkpoints/beatnet.eqx`).
"""

from . import (
    checkpoint as checkpoint,
    corpus as corpus,
    data as data,
    decode as decode,
    features as features,
    hmm as hmm,
    network as network,
    scores as scores,
    track as track,
    train as train,
)
from ._types import BeatActivation as BeatActivation, BeatTrack as BeatTrack
from .checkpoint import (
    SHIPPED as SHIPPED,
    load_model as load_model,
    model_card as model_card,
    save_model as save_model,
)
from .features import FPS as FPS, spectrogram as spectrogram
from .network import BeatBlock as BeatBlock, BeatEnsemble as BeatEnsemble, BeatNet as BeatNet
from .track import (
    activation_from_spectrogram as activation_from_spectrogram,
    beat_activation as beat_activation,
    track_beats as track_beats,
)
from .train import (
    BeatLossWeights as BeatLossWeights,
    make_step_fn as make_step_fn,
    peak_pick as peak_pick,
)

__all__ = ["checkpoint", "corpus", "data", "decode", "features", "hmm", "network", "scores",
           "track", "train",
           "BeatActivation", "BeatTrack", "BeatNet", "BeatEnsemble", "BeatBlock", "beat_activation",
           "track_beats", "spectrogram", "load_model", "save_model", "model_card", "FPS",
           "SHIPPED", "activation_from_spectrogram", "BeatLossWeights", "make_step_fn",
           "peak_pick"]
