"""XLA compiler options for the computations nrtjax compiles itself."""

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu

# XLA:CPU asks LLVM to vectorise for 256-bit registers by default (LLVM's own preference,
# kept for CPUs that clock down on 512-bit instructions), so on a CPU with AVX-512 an RK4
# step of a GrFNN layer ran at 4 doubles per instruction instead of 8. Preferring 512 bits
# made that step 1.8x faster on this project's AMD EPYC (Zen 5) machine, with bit-identical
# results (elementwise arithmetic, no reassociation: fast-math stays off). A CPU without
# AVX-512 keeps its widest registers. Only CPU computations get them (`filter_jit_tuned`).
CPU_COMPILER_OPTIONS: dict[str, int] = {"xla_cpu_prefer_vector_width": 512}
"""XLA:CPU options for 512-bit vectors (AVX-512); top-level `simulate` and `sharded_vmap`
calls pass them (docs/simulate.md, Compilation)."""


def _top_level(args) -> bool:
    """Whether a call with these arguments is a plain top-level call: none of them is being
    traced (by `grad`, `vmap`, ...) and the caller is not being traced into a larger
    computation (an outer `jit`, `scan`, `cond`, ...), where a fresh operation on
    constants is staged instead of run."""
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jtu.tree_leaves(args)):
        return False
    return not isinstance(jax.lax.add(jnp.int32(0), jnp.int32(0)), jax.core.Tracer)


def _tuned(args) -> bool:
    """Compile with `CPU_COMPILER_OPTIONS`: a top-level call on the CPU backend (other
    backends' plugins need not accept `xla_cpu_*` names)."""
    return jax.default_backend() == "cpu" and _top_level(args)


def filter_jit_tuned(fn: Callable) -> Callable:
    """`eqx.filter_jit(fn)`, compiled with `CPU_COMPILER_OPTIONS` when called at top level
    with concrete arguments on the CPU backend.

    JAX takes compiler options only on a top-level `jit`, and differentiating through
    one stages it: a call under an outer `jit` is inlined into that computation and
    compiled with the outer one's options (pass `compiler_options=nrt.CPU_COMPILER_OPTIONS`
    there for the same code), and a call with traced arguments compiles without them.
    """
    tuned = eqx.filter_jit(fn, compiler_options=CPU_COMPILER_OPTIONS)
    plain = eqx.filter_jit(fn)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return (tuned if _tuned((args, kwargs)) else plain)(*args, **kwargs)

    return call
