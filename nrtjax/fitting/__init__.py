"""Fitting model parameters to subject data by gradient (docs/fitting.md).

`fit` optimises named parameters with optax, vmapped over subjects, and returns fitted
values, loss curves, Laplace standard errors; `identifiability` reads the Hessian.
`readouts` holds the smooth tapping readouts, `losses` the residuals of ASHLE against
tap times and summary asynchronies, `data` the CSV readers, `posterior` NUTS posterior
samples (BlackJAX) on the same least-squares likelihood.
"""

from . import (
    data as data,
    losses as losses,
    posterior as posterior,
    readouts as readouts,
    synthetic as synthetic,
)
from ._fit import (
    FitResult as FitResult,
    fit as fit,
    profile as profile,
)
from ._params import ParamSpace as ParamSpace
from ._uncertainty import identifiability as identifiability, laplace as laplace
from .losses import (
    SummaryData as SummaryData,
    SummaryResiduals as SummaryResiduals,
    TapData as TapData,
    TapResiduals as TapResiduals,
    simulate_trial as simulate_trial,
)
