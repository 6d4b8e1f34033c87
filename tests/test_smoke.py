import jax.numpy as jnp
import numpy as np

import nrtjax as nrt


def test_critical_oscillator_toolbox_value():
    # Kim & Large 2015 steady state with the Toolbox's half-step averaging at 40 Hz.
    net = nrt.GrFNN(np.array([1.0]), alpha=0.0, beta1=-1.0, beta2=-1.0, eps=1.0)
    traj = nrt.simulate(net, nrt.metronome(1.0, 200.0, 40.0, amplitude=0.25), dt=1 / 40)
    assert abs(float(jnp.abs(traj.ys[-1, 0])) - 0.5564005) < 2e-6


def test_library_never_imports_hydra():
    import subprocess
    import sys

    code = ("import sys, nrtjax, nrtjax.audio, nrtjax.analysis; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('hydra', 'omegaconf')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
