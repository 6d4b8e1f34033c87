"""Analysis: phase locking, instantaneous phase and frequency, stability."""

from .phase import (
    instantaneous_frequency as instantaneous_frequency,
    instantaneous_phase as instantaneous_phase,
)
from .plv import plv as plv
