"""Analysis: phase locking, instantaneous phase and frequency, beat readouts, stability."""

from .beat import (
    peak_times as peak_times,
    phase_crossings as phase_crossings,
    resonance_peak as resonance_peak,
)
from .phase import (
    instantaneous_frequency as instantaneous_frequency,
    instantaneous_phase as instantaneous_phase,
)
from .plv import plv as plv
