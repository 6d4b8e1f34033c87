"""The two values that pass between the beat network and its decoders."""

from typing import NamedTuple

import numpy as np


class BeatActivation(NamedTuple):
    """Frame-wise beat and downbeat activations of one recording.

    **Fields:**

    - `beat`: shape `(frames,)`, the probability that a beat falls in each frame, in [0, 1].
    - `downbeat`: shape `(frames,)`, the probability that a downbeat (a bar's first beat)
      falls in each frame, in [0, 1]; a downbeat frame is also a beat frame.
    - `fps`: frames per second; frame `i` is centred at `i / fps` seconds.
    - `tempo`: optional, shape `(bins,)`: a network's probabilities of the recording's
      tempo over [`tempo_grid`][nrtjax.beats.network.tempo_grid]`(bins)` BPM (its tempo
      head; `None` when the network has none). The offline decoders use it as a prior on
      the tempo when their `tempo_weight` is above 0.
    """

    beat: np.ndarray
    downbeat: np.ndarray
    fps: float
    tempo: np.ndarray | None = None


class BeatTrack(NamedTuple):
    """Beats decoded from a recording.

    **Fields:**

    - `beats`: beat times in seconds, increasing.
    - `downbeats`: downbeat times in seconds, a subset of `beats`.
    - `tempo_bpm`: the recording's dominant tempo in beats per minute.
    - `decoder`: which decoder produced the beats (`"oscillator"` or `"hmm"`).
    """

    beats: np.ndarray
    downbeats: np.ndarray
    tempo_bpm: float
    decoder: str
