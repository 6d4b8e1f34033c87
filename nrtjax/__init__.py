"""nrtjax: Neural Resonance Theory in JAX (oscillator models, fitting, surrogates, I/O)."""

from . import analysis as analysis, io as io, models as models
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
    lin_freqs as lin_freqs,
    log_freqs as log_freqs,
)

__version__ = "0.1.0"

# --- surrogate ---
from . import surrogate as surrogate
