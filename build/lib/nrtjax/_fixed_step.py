"""The fixed-step fast path of `simulate`, and its reverse-mode derivative.

Two ways through a fixed-step run, both the same `solver.step` calls as
`diffrax.diffeqsolve` with `StepTo`:

- `scan_fixed`: a `lax.scan`, differentiated by JAX with every step rematerialised.
- `scan_elementwise`: the same forward scan for RK4 runs of *elementwise* models (each
    unit's derivative depends on its own state, the shared input and parameters that
    broadcast over the units: `GrFNN` layers, `Hopf` banks), whose backward pass is the
    discrete adjoint of RK4 written out (`_rk4_step_vjp`). Each unit's Jacobian is a 2x2
    real block, read off two forward-mode derivatives, so a backward step is a few fused
    elementwise kernels instead of the ~45 small kernels reverse mode makes of the
    transposed field, and per-unit parameter sensitivities are summed over units once at
    the end rather than at every step. The saved trajectory is the checkpoint: nothing
    else is stored.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu

from ._compile import filter_jit_tuned
from ._solvers import RK4, scale


@filter_jit_tuned
def scan_fixed(model, signal, y0, solver, grid, k0: int, stride: int, n_save: int):
    """Save the state at grid indices `k0 + i * stride`, `i < n_save`."""
    term = diffrax.ODETerm(model)
    state = solver.init(term, grid[0], grid[1], y0, signal)
    last = grid.shape[0] - 1

    # Rematerialise each step in the backward pass: storing only the carried state, not every
    # stage's intermediates, made jax.grad through a 60 s GrFNN run several times cheaper.
    @jax.checkpoint
    def step(carry, idx):
        y, st = carry
        # An index past the end gives a zero-length step (t0 = t1): the state is unchanged.
        t0, t1 = grid[jnp.minimum(idx, last)], grid[jnp.minimum(idx + 1, last)]
        y1, _, _, st, _ = solver.step(term, t0, t1, y, signal, st, False)
        return (y1, st), y

    def advance(carry, start, count):
        carry, _ = jax.lax.scan(lambda c, i: (step(c, i)[0], None), carry, start + jnp.arange(count))
        return carry

    carry = advance((y0, state), 0, k0) if k0 > 0 else (y0, state)
    if stride == 1:
        # Each iteration saves its state, then steps (the last step has zero length), so
        # the n_save states leave the scan as they are: no concatenation, which would copy
        # the whole trajectory once more.
        _, ys = jax.lax.scan(step, carry, k0 + jnp.arange(n_save))
        return ys

    def segment(carry, i):
        carry = advance(carry, k0 + i * stride, stride)
        return carry, carry[0]

    _, ys = jax.lax.scan(segment, carry, jnp.arange(n_save - 1))
    return jtu.tree_map(lambda a, b: jnp.concatenate([a[None], b]), carry[0], ys)


def elementwise_ok(model, solver, y0) -> bool:
    """Whether `scan_elementwise` applies: `nrt.RK4`, a model that declares itself
    elementwise, one state array, and every inexact model leaf broadcasting to it."""
    if type(solver) is not RK4 or not getattr(model, "elementwise", False):
        return False
    if not eqx.is_inexact_array(y0):
        return False
    for leaf in jtu.tree_leaves(eqx.filter(model, eqx.is_inexact_array)):
        try:
            if jnp.broadcast_shapes(leaf.shape, y0.shape) != y0.shape:
                return False
        except ValueError:
            return False
    return True


@eqx.filter_custom_vjp
def scan_elementwise(diff, grid, k0: int, stride: int, n_save: int):
    """`scan_fixed` with RK4 on `diff = (model, y0, signal)`, differentiated by
    `_backward` (or, when the input signal itself is differentiated, by plain reverse
    mode through `scan_fixed`)."""
    model, y0, signal = diff
    return scan_fixed(model, signal, y0, RK4(), grid, k0, stride, n_save)


@scan_elementwise.def_fwd
def _forward(perturbed, diff, grid, k0, stride, n_save):
    del perturbed
    ys = scan_elementwise.fn(diff, grid, k0, stride, n_save)
    return ys, ys


@scan_elementwise.def_bwd
def _backward(ys, ys_bar, perturbed, diff, grid, k0, stride, n_save):
    model, y0, signal = diff
    if ys_bar is None:
        return jtu.tree_map(lambda _: None, diff)
    if any(jtu.tree_leaves(perturbed[2])):
        _, vjp = jax.vjp(lambda d: scan_elementwise.fn(d, grid, k0, stride, n_save), diff)
        (bar,) = vjp(ys_bar)
        return jtu.tree_map(lambda b, p: b if p else None, bar, perturbed)
    params, rest = eqx.partition(model, perturbed[0])
    field = _Field(rest, signal, jnp.iscomplexobj(y0))
    # Cotangents as (dL/dRe + i dL/dIm); JAX passes and expects their conjugate.
    bar = field.flip(ys_bar)
    acc = jtu.tree_map(lambda p: jnp.zeros(y0.shape, p.dtype), params)

    def back(lam_acc, k, y):
        lam, acc = lam_acc
        lam, contrib = _rk4_step_vjp(field, params, grid[k], grid[k + 1], y, lam)
        return lam, jtu.tree_map(jnp.add, acc, contrib)

    def segment(carry, i):
        """Back from saved state i + 1 to saved state i, then add state i's cotangent."""
        if stride == 1:  # the step's input state is saved: nothing to recompute
            lam, acc = back(carry, k0 + i, ys[i])
        else:
            lam, acc = _backprop_run(field, params, back, grid, carry, ys[i], k0 + i * stride, stride)
        return (lam + bar[i], acc), None

    carry, _ = jax.lax.scan(segment, (bar[-1], acc), jnp.arange(n_save - 2, -1, -1))
    if k0 > 0:
        carry = _backprop_run(field, params, back, grid, carry, y0, 0, k0)
    lam, acc = carry
    params_bar = jtu.tree_map(lambda a, p: _unbroadcast(a, p), acc, params)
    y0_bar = field.flip(lam) if perturbed[1] else None
    return params_bar, y0_bar, jtu.tree_map(lambda _: None, signal)


def _backprop_run(field, params, back, grid, carry, y_start, start, count):
    """Recompute the `count` states from `y_start` (grid index `start`), then run the
    adjoint back through them."""
    def fwd(y, k):
        return field.step(params, grid[k], grid[k + 1], y), y

    _, states = jax.lax.scan(fwd, y_start, start + jnp.arange(count))

    def body(carry, j):
        return back(carry, start + j, states[j]), None

    carry, _ = jax.lax.scan(body, carry, jnp.arange(count - 1, -1, -1))
    return carry


class _Field(eqx.Module):
    """The vector field with its unperturbed part fixed, and per-unit derivatives."""

    rest: eqx.Module
    signal: eqx.Module
    complex_state: bool = eqx.field(static=True)

    def __call__(self, params, t, y):
        return eqx.combine(params, self.rest)(t, y, self.signal)

    def step(self, params, t0, t1, y):
        """One `nrt.RK4` step (the forward pass's own arithmetic)."""
        term = diffrax.ODETerm(eqx.combine(params, self.rest))
        return RK4().step(term, t0, t1, y, self.signal, None, False)[0]

    def flip(self, a):
        return jnp.conj(a) if self.complex_state else a

    def transpose(self, params, t, y, g):
        """`(J^T g, {leaf: per-unit d<g, F>/d leaf})` at `(t, y)`, with `J` the per-unit
        Jacobian of the field (a 2x2 real block for a complex state)."""
        def along(dy):
            return jax.jvp(lambda u: self(params, t, u), (y,), (dy,))[1]

        if self.complex_state:
            gc = jnp.conj(g)
            d_re, d_im = along(jnp.ones_like(y)), along(jnp.full_like(y, 1j))
            jt = jax.lax.complex(jnp.real(gc * d_re), jnp.real(gc * d_im))
        else:
            jt = g * along(jnp.ones_like(y))
        # Parameters: one reverse pass with every leaf broadcast over the units gives
        # each unit's sensitivity to each leaf, elementwise (no reduction inside the
        # loop); forward derivatives, one per leaf, cost more once there are several.
        per_unit = jtu.tree_map(lambda p: jnp.broadcast_to(p, y.shape), params)
        _, vjp = jax.vjp(lambda q: self(q, t, y), per_unit)
        (contrib,) = vjp(self.flip(g))
        return jt, contrib


def _rk4_step_vjp(field, params, t0, t1, y, lam):
    """The adjoint of one RK4 step: `lam` = dL/dy1 -> dL/dy0, and the per-unit
    parameter contributions: the discrete adjoint of an explicit Runge-Kutta method,
    stage by stage in reverse (Hager 2000, Numer. Math. 87, 247-282)."""
    h = t1 - t0
    th = t0 + 0.5 * h
    # Step fractions in the state's real dtype (RK4.step's own h/2 = th - t0 and h),
    # applied with `scale` as RK4.step applies them.
    real = jnp.real(y).dtype
    half, h = (th - t0).astype(real), h.astype(real)
    f1 = field(params, t0, y)
    ya = y + scale(half, f1)
    f2 = field(params, th, ya)
    yb = y + scale(half, f2)
    f3 = field(params, th, yb)
    yc = y + scale(2 * half, f3)
    lc, p4 = field.transpose(params, t1, yc, scale(h / 6, lam))
    lb, p3 = field.transpose(params, th, yb, scale(4 * half / 6, lam) + scale(2 * half, lc))
    la, p2 = field.transpose(params, th, ya, scale(4 * half / 6, lam) + scale(half, lb))
    l0, p1 = field.transpose(params, t0, y, scale(2 * half / 6, lam) + scale(half, la))
    contrib = jtu.tree_map(lambda a, b, c, d: a + b + c + d, p1, p2, p3, p4)
    return lam + la + lb + lc + l0, contrib


def _unbroadcast(acc, like):
    """Sum a per-unit accumulator down to the shape of the leaf it belongs to."""
    extra = acc.ndim - like.ndim
    acc = jnp.sum(acc, axis=tuple(range(extra))) if extra else acc
    keep = tuple(i for i, n in enumerate(like.shape) if n == 1 and acc.shape[i] != 1)
    acc = jnp.sum(acc, axis=keep, keepdims=True) if keep else acc
    return acc.astype(like.dtype)
