import importlib.util
from pathlib import Path
from types import ModuleType

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu


def tree_allclose(x, y, *, rtol=1e-5, atol=1e-8):
    """True when two pytrees have the same structure and allclose leaves."""
    return eqx.tree_equal(x, y, typematch=True, rtol=rtol, atol=atol)


def max_abs_diff(x, y):
    return max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jtu.tree_leaves(x), jtu.tree_leaves(y)))


def load_script(name: str) -> ModuleType:
    """The module of `scripts/NAME.py` (the scripts folder is not a package)."""
    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
