"""Steady states of the canonical oscillator: spontaneous amplitudes and driven 1:1 locking.

For one canonical oscillator (Large, Almonte & Velasco 2010) write $z = r e^{i\\phi}$ and
$G(r) = \\alpha + \\beta_1 r^2 + \\varepsilon\\beta_2 r^4/(1-\\varepsilon r^2)$,
$D(r) = \\delta_1 r^2 + \\varepsilon\\delta_2 r^4/(1-\\varepsilon r^2)$. Without input
$\\dot r = s\\,r\\,G(r)$; driven by $F e^{i 2\\pi f_s t}$ through a linear input of weight
$w$, in the frame of the stimulus ($\\psi = \\phi - 2\\pi f_s t$):

$$\\dot r = s\\,r\\,G(r) + s w F\\cos\\psi, \\qquad
\\dot\\psi = 2\\pi(f - f_s) + s D(r) - \\frac{s w F}{r}\\sin\\psi$$

(Kim & Large 2015, eqs. 6-7), with frequency scale $s = f$ on a log grid.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from .._dtypes import as_float


def spontaneous_amplitudes(
    alpha: ArrayLike, beta1: ArrayLike, beta2: ArrayLike, eps: ArrayLike
) -> tuple[Float[Array, "3"], Bool[Array, "3"], Bool[Array, "3"]]:
    """Steady-state amplitudes of the autonomous canonical oscillator, and their stability.

    $r = 0$ and the positive roots $r = \\sqrt u$ of
    $\\varepsilon(\\beta_2-\\beta_1)u^2 + (\\beta_1 - \\alpha\\varepsilon)u + \\alpha = 0$
    with $\\varepsilon u < 1$ (the Toolbox's `spontAmp` polynomial, $r G(r) = 0$ times
    $1-\\varepsilon r^2$). Closed form, so it is differentiable and vmappable.

    **Returns:** `(r, valid, stable)`, each of shape `(3,)`: the candidates $0$,
    $\\sqrt{u_-}$, $\\sqrt{u_+}$; whether each is a real steady state; whether it is stable
    ($\\alpha < 0$ for the origin, $G'(r) < 0$ otherwise).
    """
    alpha, beta1, beta2, eps = (as_float(v) for v in (alpha, beta1, beta2, eps))
    dtype = jnp.result_type(alpha, beta1, beta2, eps)
    alpha, beta1, beta2, eps = (v.astype(dtype) for v in (alpha, beta1, beta2, eps))
    qa = eps * (beta2 - beta1)
    qb = beta1 - alpha * eps
    qc = alpha
    disc = qb * qb - 4 * qa * qc
    sq = jnp.sqrt(jnp.maximum(disc, 0.0))
    quadratic = jnp.abs(qa) > 1e-12 * (jnp.abs(qb) + jnp.abs(qc) + 1)
    safe_qa = jnp.where(quadratic, qa, 1.0)
    safe_qb = jnp.where(qb == 0, 1.0, qb)
    u_quad = jnp.stack([(-qb - sq) / (2 * safe_qa), (-qb + sq) / (2 * safe_qa)])
    u_lin = jnp.stack([-qc / safe_qb, jnp.asarray(-1.0, dtype)])
    u = jnp.where(quadratic, u_quad, u_lin)
    real = jnp.where(quadratic, disc >= 0, qb != 0)
    ok = real & (u > 0) & (eps * u < 1)
    r = jnp.sqrt(jnp.where(ok, u, 0.0))
    gprime = _dG(r, beta1, beta2, eps)
    r_all = jnp.concatenate([jnp.zeros((1,), dtype), r])
    valid = jnp.concatenate([jnp.ones((1,), bool), ok])
    stable = jnp.concatenate([(alpha < 0)[None], ok & (gprime < 0)])
    return r_all, valid, stable


def _dG(r, beta1, beta2, eps):
    u = r * r
    return 2 * beta1 * r + eps * beta2 * (4 * r**3 * (1 - eps * u) + 2 * eps * r**5) / (1 - eps * u) ** 2


def _polar_field(state, f, f_stim, forcing, alpha, beta1, beta2, delta1, delta2, eps, weight, s):
    r, psi = state[0], state[1]
    u = r * r
    g = alpha + beta1 * u + eps * beta2 * u * u / (1 - eps * u)
    d = delta1 * u + eps * delta2 * u * u / (1 - eps * u)
    dr = s * r * g + s * weight * forcing * jnp.cos(psi)
    dpsi = 2 * jnp.pi * (f - f_stim) + s * d - s * weight * forcing * jnp.sin(psi) / r
    return jnp.stack([dr, dpsi])


def driven_steady_states(
    freq: float,
    stim_freq: float,
    forcing: float,
    *,
    alpha: float = 0.0,
    beta1: float = -1.0,
    beta2: float = -1.0,
    delta1: float = 0.0,
    delta2: float = 0.0,
    eps: float = 1.0,
    weight: float = 1.0,
    spacing: str = "log",
) -> list[dict]:
    """All 1:1 phase-locked steady states of a canonical oscillator driven by
    $F e^{i 2\\pi f_s t}$ (linear input), with their stability from the Jacobian.

    The amplitudes are the roots with $r > 0$, $\\varepsilon r^2 < 1$ of
    $(r G(r))^2 + (r(\\Omega + sD(r))/s)^2 = (wF)^2$, $\\Omega = 2\\pi(f - f_s)$, written as a
    degree-5 polynomial in $u = r^2$ (times $(1-\\varepsilon u)^2$); the relative phase
    follows from $\\cos\\psi = -rG(r)/(wF)$, $\\sin\\psi = r(\\Omega + sD(r))/(swF)$.
    Host-side (NumPy roots); the Jacobian of the polar system comes from `jax.jacfwd`.

    **Returns:** a list of dicts `{r, psi, stable, eigenvalues}` sorted by amplitude.

    **References:** Kim, J. C. & Large, E. W. (2015), Front. Comput. Neurosci. 9, 152.
    """
    s = freq if spacing == "log" else 1.0
    om = 2 * np.pi * (freq - stim_freq)
    e = eps
    P = np.polynomial.Polynomial
    one_m = P([1.0, -e])
    g_num = alpha * one_m + beta1 * P([0, 1]) * one_m + e * beta2 * P([0, 0, 1])
    d_num = om / s * one_m + delta1 * P([0, 1]) * one_m + e * delta2 * P([0, 0, 1])
    poly = P([0, 1]) * (g_num**2 + d_num**2) - (weight * forcing) ** 2 * one_m**2
    roots = poly.roots()
    out = []
    for u in roots:
        if abs(u.imag) > 1e-9 * max(1.0, abs(u.real)) or u.real <= 0 or e * u.real >= 1:
            continue
        r = float(np.sqrt(u.real))
        uu = r * r
        g = alpha + beta1 * uu + e * beta2 * uu * uu / (1 - e * uu)
        d = delta1 * uu + e * delta2 * uu * uu / (1 - e * uu)
        psi = float(np.arctan2(r * (om / s + d) / (weight * forcing), -r * g / (weight * forcing)))
        jac = jax.jacfwd(_polar_field)(jnp.array([r, psi]), freq, stim_freq, forcing, alpha,
                                       beta1, beta2, delta1, delta2, e, weight, s)
        eig = np.linalg.eigvals(np.asarray(jac))
        out.append({"r": r, "psi": psi, "stable": bool(np.all(eig.real < 0)), "eigenvalues": eig})
    return sorted(out, key=lambda d: d["r"])
