"""nrtjax: Neural Resonance Theory in JAX (oscillator models, fitting, surrogates, I/O).

The top level holds the core API (signals, models, `simulate`, `fit`, analysis, file
writing) and the subpackages. The media subpackages (`audio`, `beats`, `eeg`, `plots`,
`surrogate`, `video`) load on first use, so `import nrtjax` loads none of OpenCV, MNE,
soundfile or Matplotlib.
"""

import importlib
from typing import TYPE_CHECKING

from . import analysis as analysis, data as data, fitting as fitting, io as io, models as models
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
from ._sweep import sharded_vmap as sharded_vmap
from ._train import make_optimizer as make_optimizer
from .analysis import plv as plv
from .fitting import fit as fit
from .models import (
    ASHLE as ASHLE,
    AbstractModel as AbstractModel,
    ASHLEState as ASHLEState,
    GrFNN as GrFNN,
    Hopf as Hopf,
    Lorenz as Lorenz,
    Network as Network,
    NetworkState as NetworkState,
    lin_freqs as lin_freqs,
    log_freqs as log_freqs,
)

if TYPE_CHECKING:  # loaded on first attribute access (`__getattr__` below)
    from . import (
        audio as audio,
        beats as beats,
        eeg as eeg,
        plots as plots,
        surrogate as surrogate,
        video as video,
    )

__version__ = "0.1.0"

_LAZY = ("audio", "beats", "eeg", "plots", "surrogate", "video")

__all__ = [
    # subpackages
    "analysis", "data", "fitting", "io", "models",
    "audio", "beats", "eeg", "plots", "surrogate", "video",  # loaded on first use
    # signals and simulation
    "Signal", "click_train", "metronome", "pulse_train", "silence",
    "SimulationDivergedError", "Trajectory", "simulate", "RK4", "CPU_COMPILER_OPTIONS",
    "sharded_vmap",
    # models
    "AbstractModel", "ASHLE", "ASHLEState", "GrFNN", "Hopf", "Lorenz", "Network",
    "NetworkState", "lin_freqs", "log_freqs",
    # analysis and fitting
    "plv", "fit", "make_optimizer",
]


def __getattr__(name: str):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)  # binds it on the package too
    raise AttributeError(f"module 'nrtjax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
