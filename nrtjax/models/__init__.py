"""nrtjax models: Equinox vector fields `(t, y, args) -> dy/dt`."""

from . import (
    ashle as ashle,
    duet as duet,
    grfnn as grfnn,
    hopf as hopf,
    lorenz as lorenz,
    network as network,
)
from ._base import AbstractModel as AbstractModel
from .ashle import ASHLE as ASHLE, ASHLEState as ASHLEState
from .duet import DuetField as DuetField
from .grfnn import GrFNN as GrFNN, lin_freqs as lin_freqs, log_freqs as log_freqs
from .hopf import Hopf as Hopf
from .lorenz import Lorenz as Lorenz
from .network import (
    Connection as Connection,
    Network as Network,
    NetworkState as NetworkState,
    connect as connect,
    farey_ratio as farey_ratio,
    kernel_matrix as kernel_matrix,
)
