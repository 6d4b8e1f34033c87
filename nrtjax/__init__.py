"""nrtjax: Neural Resonance Theory in JAX (oscillator models, fitting, surrogates, I/O)."""

from . import analysis as analysis, io as io, models as models
from ._compile import CPU_COMPILER_OPTIONS as CPU_COMPILER_OPTIONS
from ._signal import (
    Signal as Signal,
    click_train as click_train,
    metronome as metronome,
    pulse_train as pulse_train,
    silence as silence,
)
from ._simulate import (
    SimulationDivergedError as SimulationDivergedError,
    Trajectory as Trajectory,
    simulate as simulate,
)
from ._solvers import RK4 as RK4
from .analysis import plv as plv
from .models import (
    ASHLE as ASHLE,
    ASHLEState as ASHLEState,
    AbstractModel as AbstractModel,
    GrFNN as GrFNN,
    Hopf as Hopf,
    Lorenz as Lorenz,
    Network as Network,
    NetworkState as NetworkState,
    lin_freqs as lin_freqs,
    log_freqs as log_freqs,
)

__version__ = "0.1.0"

# --- rhythm ---
from . import data as data
# --- duet ---
from . import audio as audio
from .audio.duet import DuetEngine as DuetEngine, DuetParams as DuetParams
# --- experiments ---
from ._sweep import sharded_vmap as sharded_vmap
# --- eeg ---
from . import eeg as eeg
# --- video ---
from . import video as video
# --- fit ---
# nrt.fit is the function; its package is `nrtjax.fitting`:
# `from nrtjax.fitting import readouts, losses, data, identifiability`.
from .fitting import fit as fit  # noqa: E402
# --- surrogate ---
from . import surrogate as surrogate
