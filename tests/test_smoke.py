import jax.numpy as jnp
import numpy as np

import nrtjax as nrt


def test_critical_oscillator_toolbox_value():
    # Kim & Large 2015 steady state with the Toolbox's half-step averaging at 40 Hz.
    net = nrt.GrFNN(np.array([1.0]), alpha=0.0, beta1=-1.0, beta2=-1.0, eps=1.0)
    traj = nrt.simulate(net, nrt.metronome(1.0, 200.0, 40.0, amplitude=0.25), dt=1 / 40)
    assert abs(float(jnp.abs(traj.ys[-1, 0])) - 0.5564005) < 2e-6

