"""The second worked fit: GrFNN (alpha, beta1) recovered from a target resonance curve."""

import jax.random as jr
import numpy as np

from .helpers import load_script


def _script():
    return load_script("fit_grfnn_resonance")


def test_grfnn_alpha_beta1_recovered_from_resonance_curve():
    script = _script()
    out, target = script.recover(-1.0, -4.0, steps=200, key=jr.key(0))
    assert target.shape == (2, script.FREQS.size)
    # the curve really is a resonance: it peaks at the 2 Hz stimulus
    peak = script.FREQS[np.argmax(np.asarray(target[0]))]
    assert abs(peak - script.STIM_HZ) / script.STIM_HZ < 0.15
    np.testing.assert_allclose(out.params[0], [-1.0, -4.0], rtol=0.05)
    assert float(out.loss[0]) < 1e-4
