"""The ASHLE reference protocol shared by the rhythm experiments (Roman et al. 2023).

Forward Euler at 500 Hz, metronome $e^{i2\\pi t/T}$ sampled at 500 Hz, reference initial
state ($d_0 = z_0 = 0.01$, $f_{d,0} = f(0) = f_0$) unless a start rate is given. Batches are
vmapped with `throw=False`; a failed member is reported through `ok`.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import nrtjax as nrt

FS = 500.0


def _model(f0, lambda1, lambda2, gamma, forcing=1.0):
    return nrt.ASHLE(f0=f0, lambda1=lambda1, lambda2=lambda2, gamma=gamma, forcing=forcing)


@eqx.filter_jit
def paced(f0, tempo, lambda1, lambda2, gamma, *, duration: float, fs: float = FS):
    """Metronome-paced runs, vmapped over equal-length 1-D parameter arrays.

    **Returns:** `(ts, z, f, ok)`: times `(time,)`, motor oscillator `(batch, time)`,
    motor frequency `(batch, time)`, success flags `(batch,)`.
    """
    def one(f0, tempo, l1, l2, g):
        sig = nrt.metronome(tempo, duration, fs)
        tr = nrt.simulate(_model(f0, l1, l2, g), sig, dt=1 / fs, solver=diffrax.Euler(),
                          throw=False)
        return tr.ts, tr.ys.z, tr.ys.f, tr.ok

    ts, z, f, ok = jax.vmap(one)(f0, tempo, lambda1, lambda2, gamma)
    return ts[0], z, f, ok


@eqx.filter_jit
def paced_summary(f0, tempo, lambda1, lambda2, gamma, *, duration: float, window: float,
                  threshold: float, fs: float = FS):
    """PLV (second half) and time to entrain of paced runs, without keeping trajectories.

    **Returns:** `(plv, t_entrain, f_end, ok)`, each `(batch,)`.
    """
    def one(f0, tempo, l1, l2, g):
        sig = nrt.metronome(tempo, duration, fs)
        tr = nrt.simulate(_model(f0, l1, l2, g), sig, dt=1 / fs, solver=diffrax.Euler(),
                          throw=False)
        phase_z = jnp.angle(tr.ys.z)
        phase_s = 2 * jnp.pi * tempo * tr.ts
        half = tr.ts.shape[0] // 2
        plv = nrt.plv(phase_z[half:], phase_s[half:])
        t_e = nrt.analysis.time_to_entrain(tr.ts, phase_z, phase_s,
                                           window=window, threshold=threshold, dt=1 / fs)
        return plv, t_e, tr.ys.f[-1], tr.ok

    return jax.vmap(one)(f0, tempo, lambda1, lambda2, gamma)


def unpaced(f0, f_start, lambda1, lambda2, gamma, *, duration: float, fs: float = FS):
    """Unpaced runs (no stimulus) started at the rate `f_start` (Hz), vmapped.

    The sensory and motor frequencies both start at `f_start`, the spontaneous rate is
    `f0` (Zamm et al. 2018 continuation protocol as simulated by Roman et al. 2023).

    **Returns:** `(ts, z, f, ok)` as [`paced`][].
    """
    sig = nrt.silence(duration, fs)

    @eqx.filter_jit
    def run(f0, f_start, l1, l2, g):
        def one(f0, fs_, l1, l2, g):
            model = _model(f0, l1, l2, g, forcing=0.0)
            c = jnp.asarray(0.01 + 0j, dtype=model.initial_state().z.dtype)
            y0 = nrt.ASHLEState(c, fs_, c, fs_)
            tr = nrt.simulate(model, sig, dt=1 / fs, solver=diffrax.Euler(), y0=y0, throw=False)
            return tr.ts, tr.ys.z, tr.ys.f, tr.ok

        ts, z, f, ok = jax.vmap(one)(f0, f_start, l1, l2, g)
        return ts[0], z, f, ok

    return run(f0, f_start, lambda1, lambda2, gamma)


def as_batch(*arrays, dtype=None) -> list[jax.Array]:
    """Broadcast scalars/arrays to one common 1-D batch shape."""
    arrs = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = np.broadcast_shapes(*[a.shape for a in arrs])
    return [jnp.asarray(np.broadcast_to(a, shape).reshape(-1)) for a in arrs]
