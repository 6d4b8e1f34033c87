"""Beat tracking: a learned beat activation decoded by oscillators."""

from ._types import BeatActivation, BeatTrack

__all__ = ["BeatActivation", "BeatTrack"]
