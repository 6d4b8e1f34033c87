"""Analysis: phase locking, instantaneous phase and frequency, beat readouts, stability."""

from . import (
    beat as beat,
    modelocking as modelocking,
    phase as phase,
    rhythm as rhythm,
    stability as stability,
)
from .beat import (
    peak_times as peak_times,
    phase_crossings as phase_crossings,
    resonance_peak as resonance_peak,
)
from .phase import (
    instantaneous_frequency as instantaneous_frequency,
    instantaneous_phase as instantaneous_phase,
)
from ._plv import plv as plv
from .rhythm import (
    asynchronies as asynchronies,
    iti_drift as iti_drift,
    mean_asynchrony as mean_asynchrony,
    metronome_onsets as metronome_onsets,
    sliding_plv as sliding_plv,
    stimulus_plv as stimulus_plv,
    tap_times as tap_times,
    time_to_entrain as time_to_entrain,
)
