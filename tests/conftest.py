import sys

import jax
import jax.random as jr
import matplotlib
import pytest
from absl import logging as absl_logging

matplotlib.use("Agg")
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

# optax imports absl.logging, whose handler keeps the sys.stderr of import time (pytest's
# capture file). When a Hydra job run inside a test reconfigures logging while capsys has
# swapped sys.stderr, absl closes that file and pytest's capture fails ("I/O operation on
# closed file", "lost sys.stderr"). Give absl the real stderr, which it never closes.
absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__

# Core numerics (signal, solvers, models, analysis) are written to pass under strict
# dtype promotion; the I/O layers (audio, EEG, video) run under the standard rules.
STRICT_MODULES = ("test_signal", "test_simulate", "test_models", "test_grfnn", "test_network",
                  "test_stability", "test_analysis", "test_ashle", "test_lorenz", "test_fixed_step")


@pytest.fixture(autouse=True)
def _strict_promotion(request):
    if request.module.__name__.rsplit(".", 1)[-1] in STRICT_MODULES:
        with jax.numpy_dtype_promotion("strict"):
            yield
    else:
        yield


class _GetKey:
    """A fresh PRNG key on each call (our copy of equinox.internal's getkey)."""

    def __init__(self, seed: int):
        self.key = jr.key(seed)

    def __call__(self):
        self.key, sub = jr.split(self.key)
        return sub


@pytest.fixture
def getkey():
    return _GetKey(0)
