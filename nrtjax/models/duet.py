"""The neural duet's coupled field: a GrFNN listener, an ASHLE drummer and a Lorenz
melodist in one vector field (the engine that plays it is `nrtjax.audio.duet`)."""

import jax.numpy as jnp
from jaxtyping import Array, Complex, Float

from .._dtypes import complex_dtype, to_complex
from ._base import AbstractModel, read_input
from .ashle import ASHLE, ASHLEState, unit_phasor
from .grfnn import GrFNN
from .lorenz import Lorenz

# A point on the classical (rho = 28) attractor, reached from (1, 1, 1) after 50 time units:
# from (1, 1, 1) itself the melodist would first crawl out of the spiral around C- for ~10
# time units (a monotone minute of music) before it starts to wander.
LORENZ_Y0 = (-9.12, -15.92, 15.44)
"""The Lorenz melodist's start, on the classical attractor."""


class DuetField(AbstractModel):
    """The coupled vector field: forcing -> GrFNN -> pulse -> ASHLE; ASHLE's tempo clocks Lorenz.

    $x(t)$ drives the GrFNN layer (linear input, cubic truncation $\\varepsilon = 0$). Its
    pulse $P = \\sum_k w_k |z_k|^2 z_k / \\sum_k w_k |z_k|^2$ (0 at rest), with Gaussian
    weights $w_k = \\exp(-\\log_2^2(f_k/f_0) / 2s^2)$ around the drummer's spontaneous rate
    $f_0$ ($s$ = `pulse_octaves`), times `forcing_gain` ($F_d$) is ASHLE's stimulus. The
    Lorenz system runs in its own time
    $\\tau$ with $d\\tau/dt = r\\,f$: $r$ Lorenz time units per beat of the drummer's
    frequency $f$ (the beat clock).

    The state is `(drummer, listener, melodist)`: an [`nrtjax.models.ASHLEState`][], the
    GrFNN layer's complex `(n,)` and the Lorenz `(3,)`. The input is an [`nrtjax.Signal`][]
    (or `None`), and [`nrtjax.simulate`][] steps it; the duet engine, which streams block by
    block, steps it with `input_hold="zero"` (each sample held over its step, so that a
    block never needs the next block's first sample).
    """

    ashle: ASHLE
    net: GrFNN
    lorenz: Lorenz
    weights: Float[Array, " n"]
    lorenz_rate: Float[Array, ""]

    def pulse(self, zg: Complex[Array, " n"]) -> Complex[Array, ""]:
        # Power-weighted, so the oscillator that resonates dominates instead of being
        # averaged away by its silent neighbours; exactly 0 when the layer is at rest.
        power = self.weights * jnp.real(zg * jnp.conj(zg))
        total = jnp.sum(power)
        norm = jnp.where(total > 0, total, 1.0)
        return jnp.sum(to_complex(power / norm, zg.dtype) * zg)

    def __call__(self, t, y, args):
        drummer, zg, xyz = y
        x = read_input(args, t, zg)
        dzg = self.net(t, zg, None) + self.net.stimulus_term(x, zg)
        drive = to_complex(self.ashle.forcing, zg.dtype) * self.pulse(zg)
        # ASHLE with no input, plus its input terms (the model is linear in the input):
        # d' += f_d F_d F and f_d' += -f_d lambda1 Re(i F_d F conj(d)/|d|).
        free = self.ashle(t, drummer, None)
        ud, _ = unit_phasor(drummer.d)
        dd = free.d + to_complex(drummer.f_d, zg.dtype) * drive
        dfd = free.f_d - drummer.f_d * self.ashle.lambda1 * jnp.real(1j * drive * jnp.conj(ud))
        dxyz = self.lorenz(t, xyz, None) * (self.lorenz_rate * drummer.f)
        return ASHLEState(dd, dfd, free.z, free.f), dzg, dxyz

    def initial_state(self) -> tuple[ASHLEState, Complex[Array, " n"], Float[Array, "3"]]:
        """ASHLE's reference start ($d_0 = z_0 = 0.01$, $f_{d,0} = f(0) = f_0$), the GrFNN
        at rest ($z = 0$: without forcing its pulse is exactly zero, so the drummer plays at
        its spontaneous rate) and the Lorenz at `LORENZ_Y0`, on the attractor."""
        drummer = self.ashle.initial_state()
        dtype = jnp.real(drummer.d).dtype
        return (drummer, jnp.zeros(self.weights.shape, complex_dtype(dtype)),
                jnp.asarray(LORENZ_Y0, dtype))
