"""XLA compiler options for CPU: for the computations nrtjax compiles itself, and (through
`XLA_FLAGS`, set when nrtjax is imported) for a user's own `jax.jit` as well."""

import functools
import os
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

# The XLA_FLAGS value before nrtjax changed it (None: unset), for child processes that
# should start as a user's would without nrtjax (scripts/bench_peers.py's peers).
XLA_FLAGS_BEFORE_IMPORT: str | None = os.environ.get("XLA_FLAGS")


def _jaxlib_version() -> tuple[int, ...]:
    import jaxlib

    try:
        return tuple(int(p) for p in jaxlib.__version__.split(".")[:2])
    except ValueError:
        return (0,)


def set_cpu_flags_for_process() -> bool:
    """Add `CPU_COMPILER_OPTIONS` to `XLA_FLAGS`, so that every computation this process
    compiles on the CPU gets them, a user's own `jax.jit` included (JAX takes per-call
    compiler options only on the outermost `jit`). Called once when nrtjax is imported.

    XLA reads `XLA_FLAGS` once, when JAX first starts a backend, so this does something
    only if no JAX computation has run yet in the process; it leaves a flag already in
    `XLA_FLAGS` alone (opt out with `XLA_FLAGS=--xla_cpu_prefer_vector_width=256`, XLA's
    default) and is skipped for jaxlib older than 0.10 (XLA stops the process on a flag
    it does not know; these were tested on 0.10 and 0.12). Results are bit-identical:
    only the width of the vector instructions changes. Returns whether it set them."""
    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:  # a JAX without it: leave XLA_FLAGS alone
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if backends_are_initialized() or _jaxlib_version() < (0, 10):
        return False
    new = [f"--{k}={v}" for k, v in CPU_COMPILER_OPTIONS.items() if k not in flags]
    if not new:
        return False
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [flags, *new]))
    return True


CPU_FLAGS_SET_AT_IMPORT: bool = set_cpu_flags_for_process()


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
