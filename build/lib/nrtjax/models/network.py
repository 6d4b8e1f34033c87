"""Multi-layer GrFNN networks: connections, kernels, n:m coupling and Hebbian plasticity."""

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Float, Int

from .._custom_types import Args, RealScalarLike
from .._dtypes import as_float, complex_dtype, to_complex
from ._base import AbstractModel, read_input
from .grfnn import GrFNN, coupling_a, coupling_p, guard_domain

COUPLINGS = ("1freq", "2freq", "all2freq", "allfreq", "active")
KERNELS = ("full", "gaussian", "nearest")


def farey_ratio(r: float, tol: float = 0.01, max_den: int = 64) -> tuple[int, int]:
    """The simplest fraction $n/m$ with $|n/m - r| \\le$ `tol` (Stern-Brocot descent),
    as the Toolbox's `fareyratio` uses to pick the $n{:}m$ monomial of a 2freq connection."""
    if not r > 0:
        raise ValueError(f"Frequency ratio must be positive, got {r}.")
    lo, hi = (0, 1), (1, 0)
    while True:
        n, m = lo[0] + hi[0], lo[1] + hi[1]
        if abs(n / m - r) <= tol or m >= max_den:
            return n, m
        if n / m < r:
            lo = (n, m)
        else:
            hi = (n, m)


def kernel_matrix(
    target_freqs: np.ndarray, source_freqs: np.ndarray, kernel: str, *, sigma: float = 0.1
) -> np.ndarray:
    """Connection pattern `(n_target, n_source)`: `full` (all ones), `gaussian` (in
    log2 frequency distance, `sigma` in octaves) or `nearest` (1 at the source oscillator
    nearest in log frequency, per target)."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}.")
    d = np.log2(target_freqs)[:, None] - np.log2(source_freqs)[None, :]
    if kernel == "full":
        return np.ones_like(d)
    if kernel == "gaussian":
        if not sigma > 0:
            raise ValueError(f"gaussian kernel needs sigma > 0 (octaves), got {sigma}.")
        return np.exp(-0.5 * (d / sigma) ** 2)
    out = np.zeros_like(d)
    out[np.arange(d.shape[0]), np.argmin(np.abs(d), axis=1)] = 1.0
    return out


def _powers(z: Complex[Array, "..."], k: Int[Array, "..."]) -> Complex[Array, "..."]:
    """$z^k$ elementwise for integer $k \\ge 0$, in polar form $|z|^k e^{ik\\arg z}$ (one
    `power` and one `exp` whatever the orders, and exact $0^0 = 1$, $0^k = 0$)."""
    r = jnp.abs(z)
    safe = jnp.where(r > 0, z, jnp.ones_like(z))
    theta = jnp.angle(safe)
    kf = jnp.asarray(k).astype(r.dtype)
    mag = jnp.where(kf == 0, jnp.ones_like(r), jnp.where(r > 0, r, 0.0) ** kf)
    return to_complex(mag, z.dtype) * jnp.exp(1j * to_complex(kf * theta, z.dtype))


class Connection(eqx.Module):
    """A connection from layer `source` to layer `target` (a matrix `(n_target, n_source)`).

    Input to target oscillator $i$ (Toolbox `zdot.m`; $w_i = w f_i$ on a log grid):
    `1freq` $w_i \\sum_j C_{ij} y_j$; `2freq` $w_i \\sum_j C_{ij}
    \\sqrt{\\varepsilon}^{n+m-2} y_j^{n} \\bar z_i^{m-1}$ with $f_i/f_j \\approx n/m$;
    `all2freq` $w_i (\\sum_j C_{ij} P(y_j)) A(z_i)$; `allfreq` the same with
    $P(y)/(1-\\sqrt\\varepsilon\\bar y)$; `active` $w_i (\\sum_j C_{ij} y_j) A(z_i)$.

    With `learn=True` the matrix is a state variable (Toolbox `cdot.m`):
    $\\dot C = C(\\lambda + \\mu_1|C|^2 + \\varepsilon\\mu_2|C|^4/(1-\\varepsilon|C|^2)) + \\kappa X$
    with $X_{ij} = z_i \\bar y_j$ (1freq), $\\sqrt{\\varepsilon}^{n+m-2} z_i^m \\bar y_j^n$
    (2freq), $P(z_i)P(\\bar y_j)$ (all2freq), $P(z_i)P(\\bar y_j)/(1-\\sqrt\\varepsilon y_j)$
    (allfreq), $P(z_i)\\bar y_j$ (active); on a log grid $\\lambda, \\mu_1, \\mu_2, \\kappa$
    are multiplied by the Toolbox's pair frequency $F_{ij}$ (mean, weighted or harmonic
    mean of $f_i, f_j$ by coupling type). Self-connections of an internal connection do
    not learn.

    Build connections with [`nrtjax.models.connect`][].
    """

    source: int = eqx.field(static=True)
    target: int = eqx.field(static=True)
    coupling: str = eqx.field(static=True)
    learn: bool = eqx.field(static=True)
    c0: Complex[Array, "nt ns"]
    weight: Float[Array, " nt"]
    num: Int[Array, "nt ns"]
    den: Int[Array, "nt ns"]
    pair_freq: Float[Array, "nt ns"]
    learn_mask: Float[Array, "nt ns"]
    lam: Float[Array, ""]
    mu1: Float[Array, ""]
    mu2: Float[Array, ""]
    eps: Float[Array, ""]
    kappa: Float[Array, ""]

    def input(self, y: Complex[Array, " ns"], z: Complex[Array, " nt"], c: Array,
              eps_source: Array, eps_target: Array) -> Complex[Array, " nt"]:
        """Input to the target oscillators `z` from the source state `y` (the monomial
        factor of 2freq uses the source layer's $\\varepsilon$, $A$ and $P$ the target's)."""
        se = to_complex(jnp.sqrt(eps_target), z.dtype)
        w = to_complex(self.weight, z.dtype)
        if self.coupling == "1freq":
            return w * (c @ y)
        if self.coupling == "2freq":
            order = (self.num + self.den - 2).astype(z.real.dtype)
            epsf = to_complex(jnp.sqrt(eps_source) ** order, z.dtype)
            yn = _powers(jnp.broadcast_to(y[None, :], c.shape), self.num)
            zm = _powers(jnp.broadcast_to(jnp.conj(z)[:, None], c.shape), self.den - 1)
            return w * jnp.sum(c * epsf * yn * zm, axis=1)
        a = coupling_a(z, jnp.sqrt(eps_target))
        if self.coupling == "active":
            return w * (c @ y) * a
        p = coupling_p(y, jnp.sqrt(eps_target))
        if self.coupling == "allfreq":
            p = p / (1 - se * jnp.conj(y))
        return w * (c @ p) * a

    def hebbian(self, c: Complex[Array, "nt ns"], y: Complex[Array, " ns"], z: Complex[Array, " nt"]):
        """$\\dot C$ for a learning connection."""
        se = jnp.sqrt(self.eps)
        sec = to_complex(se, z.dtype)
        if self.coupling == "1freq":
            x = z[:, None] * jnp.conj(y)[None, :]
        elif self.coupling == "2freq":
            order = (self.num + self.den - 2).astype(z.real.dtype)
            zm = _powers(jnp.broadcast_to(z[:, None], c.shape), self.den)
            yn = _powers(jnp.broadcast_to(jnp.conj(y)[None, :], c.shape), self.num)
            x = to_complex(se**order, z.dtype) * zm * yn
        elif self.coupling == "active":
            x = coupling_p(z, se)[:, None] * jnp.conj(y)[None, :]
        else:
            py = coupling_p(jnp.conj(y), se)
            if self.coupling == "allfreq":
                py = py / (1 - sec * y)
            x = coupling_p(z, se)[:, None] * py[None, :]
        r2 = jnp.real(c * jnp.conj(c))
        f = self.pair_freq
        rate = f * (self.lam + self.mu1 * r2 + self.eps * self.mu2 * r2 * r2 / (1 - self.eps * r2))
        dc = c * to_complex(rate, z.dtype) + to_complex(self.kappa * f * self.learn_mask, z.dtype) * x
        return guard_domain(dc, c, self.eps) * to_complex(self.learn_mask, z.dtype)


def connect(
    layers: tuple[GrFNN, ...] | list[GrFNN],
    source: int,
    target: int,
    *,
    coupling: str = "1freq",
    kernel: str = "full",
    strength: ArrayLike = 1.0,
    weight: ArrayLike = 1.0,
    sigma: float = 0.1,
    c0: ArrayLike | None = None,
    learn: tuple[float, float, float, float, float] | None = None,
    tol: float = 0.01,
) -> Connection:
    """Build a [`nrtjax.models.Connection`][] between two layers of a network.

    **Arguments:**

    - `layers`: the network's layers; `source`, `target`: their indices (equal for an
        internal connection).
    - `coupling`: `"1freq"`, `"2freq"`, `"all2freq"`, `"allfreq"` or `"active"`.
    - `kernel`, `sigma`: initial pattern (`"full"`, `"gaussian"` with width `sigma`
        octaves, `"nearest"`), multiplied by `strength` (real or complex).
    - `c0`: an explicit initial matrix `(n_target, n_source)` instead of a kernel.
    - `weight`: the connection weight $w$ (times the target frequency on a log grid).
    - `learn`: `(lambda, mu1, mu2, eps, kappa)` to make the matrix plastic, or `None`.
    - `tol`: tolerance of the Farey ratio for `2freq`.
    """
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}.")
    src, tgt = layers[source], layers[target]
    fs_, ft = np.asarray(src.freqs, np.float64), np.asarray(tgt.freqs, np.float64)
    dtype = complex_dtype(tgt.freqs.dtype)
    if c0 is None:
        c0 = kernel_matrix(ft, fs_, kernel, sigma=sigma) * np.asarray(strength)
    c0 = jnp.asarray(c0, dtype=dtype)
    if c0.shape != (ft.size, fs_.size):
        raise ValueError(f"c0 must have shape {(ft.size, fs_.size)}, got {c0.shape}.")
    f2, f1 = np.meshgrid(ft, fs_, indexing="ij")
    num = np.ones(f2.shape, dtype=np.int32)
    den = np.ones(f2.shape, dtype=np.int32)
    if coupling == "2freq":
        for idx in np.ndindex(f2.shape):
            num[idx], den[idx] = farey_ratio(f2[idx] / f1[idx], tol)
        pair = (num * f1 + den * f2) / (num + den)
    elif coupling == "1freq":
        pair = (f1 + f2) / 2
    else:
        pair = 2 * f1 * f2 / (f1 + f2)
    log = tgt.spacing == "log"
    mask = np.ones(f2.shape)
    if source == target:  # an internal connection has no self-connections (Toolbox mask)
        np.fill_diagonal(mask, 0.0)
        c0 = c0 * jnp.asarray(mask, dtype=dtype)
    lam, mu1, mu2, eps, kappa = learn if learn is not None else (0.0, 0.0, 0.0, 0.0, 0.0)
    like = tgt.freqs
    return Connection(
        source=source, target=target, coupling=coupling, learn=learn is not None,
        c0=c0,
        weight=as_float(weight, like) * (tgt.freqs if log else jnp.ones_like(tgt.freqs)),
        num=jnp.asarray(num), den=jnp.asarray(den),
        pair_freq=jnp.asarray(pair if log else np.ones_like(pair), dtype=like.dtype),
        learn_mask=jnp.asarray(mask, dtype=like.dtype),
        lam=as_float(lam, like), mu1=as_float(mu1, like), mu2=as_float(mu2, like),
        eps=as_float(eps, like), kappa=as_float(kappa, like),
    )


class NetworkState(NamedTuple):
    """A network's state: one complex vector per layer and one matrix per learning connection."""

    z: tuple[Complex[Array, "..."], ...]
    c: tuple[Complex[Array, "..."], ...]


class Network(AbstractModel):
    """Several GrFNN layers coupled by [`nrtjax.models.Connection`][]s, advancing together
    with the plastic connection matrices (Toolbox `zdot.m` + `cdot.m`).

    The external input (the Signal) drives the layers listed in `input_layers` through
    each layer's own input type and weight.

    !!! example

        ```python
        l1 = nrt.GrFNN(nrt.log_freqs(0.5, 8, 61), alpha=0.01, beta1=-1, eps=1)
        l2 = nrt.GrFNN(nrt.log_freqs(0.5, 8, 61), alpha=-0.4, beta1=-1, eps=1)
        layers = (l1, l2)
        net = nrt.Network(layers, (
            nrt.models.connect(layers, 0, 1, coupling="1freq", kernel="nearest", strength=0.5),
            nrt.models.connect(layers, 1, 1, coupling="2freq", learn=(0.0, -1.0, -1.0, 1.0, 0.5)),
        ))
        ```
    """

    layers: tuple[GrFNN, ...]
    connections: tuple[Connection, ...]
    input_layers: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, layers, connections=(), input_layers: tuple[int, ...] = (0,)):
        """**Arguments:**

        - `layers`: a tuple of [`nrtjax.GrFNN`][] layers.
        - `connections`: a tuple of connections built with `nrt.models.connect`.
        - `input_layers`: indices of the layers that receive the external input.
        """
        self.layers = tuple(layers)
        self.connections = tuple(connections)
        self.input_layers = tuple(input_layers)

    def __check_init__(self):
        n = len(self.layers)
        for c in self.connections:
            if not (0 <= c.source < n and 0 <= c.target < n):
                raise ValueError(f"Connection {c.source}->{c.target} refers to a missing layer "
                                 f"(the network has {n}).")
        if any(not 0 <= i < n for i in self.input_layers):
            raise ValueError(f"input_layers {self.input_layers} out of range for {n} layers.")

    def __call__(self, t: RealScalarLike, y: NetworkState, args: Args) -> NetworkState:
        zs, cs = y
        plastic = iter(cs)
        mats = [next(plastic) if con.learn else con.c0 for con in self.connections]
        dz = []
        for i, (layer, z) in enumerate(zip(self.layers, zs)):
            d = layer.intrinsic(z)
            if i in self.input_layers:
                d = d + layer.stimulus_term(read_input(args, t, z), z)
            for con, c in zip(self.connections, mats):
                if con.target == i:
                    d = d + con.input(zs[con.source], z, c, self.layers[con.source].eps,
                                      layer.eps)
            dz.append(guard_domain(d, z, layer.eps))
        dc = [con.hebbian(c, zs[con.source], zs[con.target])
              for con, c in zip(self.connections, mats) if con.learn]
        return NetworkState(tuple(dz), tuple(dc))

    def initial_state(self) -> NetworkState:
        """Each layer's initial state and each learning connection's `c0`."""
        return NetworkState(
            tuple(layer.initial_state() for layer in self.layers),
            tuple(con.c0 for con in self.connections if con.learn),
        )
