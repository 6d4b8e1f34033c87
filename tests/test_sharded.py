"""nrt.sharded_vmap over 8 devices (forced host devices, in a subprocess) equals jax.vmap."""

import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent

CODE = r"""
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
import nrtjax as nrt

assert jax.local_device_count() == 8, jax.devices()
freqs = nrt.log_freqs(0.5, 8.0, 17)
sig = nrt.metronome(2.0, 4.0, 64.0, amplitude=0.25)

def member(p):
    model = nrt.GrFNN(freqs, alpha=p["alpha"], beta1=p["beta1"], beta2=-1.0, eps=1.0)
    ys = nrt.simulate(model, sig, dt=1 / 64.0, throw=False).ys
    return {"final": ys[-1], "amp": jnp.mean(jnp.abs(ys[128:]), axis=0)}

for members in (24, 21):      # a multiple of 8, and one padded to 24
    p = {"alpha": jnp.linspace(-1.0, 0.5, members), "beta1": jnp.linspace(-2.0, 0.0, members)}
    got = nrt.sharded_vmap(member)(p)
    want = jax.vmap(member)(p)
    for k in ("final", "amp"):
        assert got[k].shape == want[k].shape == (members, 17), (k, got[k].shape)
        assert got[k].dtype == want[k].dtype
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-12, atol=1e-13)
    # An independent oracle for one member: the plain simulate call, unbatched.
    one = member({"alpha": p["alpha"][members - 1], "beta1": p["beta1"][members - 1]})
    np.testing.assert_allclose(np.asarray(got["final"][-1]), np.asarray(one["final"]),
                               rtol=1e-12, atol=1e-13)

# The members really are split: 8 shards of 3 members, one per device.
out = nrt.sharded_vmap(member)({"alpha": jnp.linspace(-1.0, 0.5, 24),
                                "beta1": jnp.zeros(24)})["amp"]
shards = out.addressable_shards
assert len({s.device for s in shards}) == 8, out.sharding
assert sorted(s.data.shape[0] for s in shards) == [3] * 8, [s.data.shape for s in shards]
print("OK")
"""


def test_sharded_vmap_over_8_host_devices_equals_vmap():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=8")
    r = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout[-2000:] + r.stderr[-3000:]
