"""Classical fourth-order Runge-Kutta as a Diffrax solver."""

from collections.abc import Callable
from typing import ClassVar

import diffrax
import numpy as np

# Stages at t, t + h/2, t + h/2, t + h with weights 1/6, 1/3, 1/3, 1/6 (Kutta 1901).
# The embedded error estimate compares with the midpoint rule y + h k2 (order 2); it
# exists only so that the tableau is complete: RK4 is meant for fixed steps.
_rk4_tableau = diffrax.ButcherTableau(
    a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    b_error=np.array([1 / 6, 1 / 3 - 1.0, 1 / 3, 1 / 6]),
    c=np.array([0.5, 0.5, 1.0]),
)


class RK4(diffrax.AbstractERK):
    """The classical fourth-order Runge-Kutta method, for fixed steps.

    With the step equal to the input's sample spacing, the two half-step stages read
    the mean of two neighbouring samples from a [`nrtjax.Signal`][]: exactly what the
    MATLAB GrFNN Toolbox's `odeRK4fs.m` does, so nrtjax agrees with it.

    Uses 4 stages and third-order Hermite interpolation for dense output.

    **References:**

    Kutta, W. (1901). Beitrag zur naeherungsweisen Integration totaler
    Differentialgleichungen. Z. Math. Phys. 46, 435-453.
    """

    tableau: ClassVar[diffrax.ButcherTableau] = _rk4_tableau
    interpolation_cls: ClassVar[Callable[..., diffrax.ThirdOrderHermitePolynomialInterpolation]] = (
        diffrax.ThirdOrderHermitePolynomialInterpolation.from_k
    )

    def order(self, terms):
        del terms
        return 4
