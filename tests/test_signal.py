import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nrtjax as nrt


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("uniform", [True, False])
def test_linear_interpolation_matches_numpy(dtype, uniform):
    rng = np.random.default_rng(0)
    ts = np.arange(50) * 0.1 if uniform else np.cumsum(rng.uniform(0.05, 0.2, 50))
    xs = rng.normal(size=50) + (1j * rng.normal(size=50) if dtype == np.complex128 else 0)
    sig = nrt.Signal(ts, xs.astype(dtype))
    assert (sig.dt is not None) == uniform
    tq = rng.uniform(ts[0], ts[-1], 200)
    got = np.asarray(jax.vmap(sig.evaluate)(jnp.asarray(tq)))
    want = np.interp(tq, ts, xs.real) + 1j * np.interp(tq, ts, xs.imag)
    np.testing.assert_allclose(got, want if dtype == np.complex128 else want.real, atol=1e-12)
    # End samples are held outside the span.
    assert np.allclose(sig.evaluate(ts[0] - 1.0), xs[0])
    assert np.allclose(sig.evaluate(ts[-1] + 1.0), xs[-1])


def test_half_step_is_mean_of_neighbours():
    xs = np.array([0.0, 1.0, 4.0, 9.0, 16.0])
    sig = nrt.Signal.sampled(xs, fs=40.0)
    for k in range(4):
        assert float(sig.evaluate((k + 0.5) / 40.0)) == pytest.approx((xs[k] + xs[k + 1]) / 2, abs=1e-12)


def test_multichannel():
    ts = np.linspace(0, 1, 11)
    xs = np.stack([ts, 2 * ts], axis=1)
    sig = nrt.Signal(ts, xs)
    np.testing.assert_allclose(sig.evaluate(0.55), [0.55, 1.1], atol=1e-12)


@pytest.mark.parametrize(
    "ts, xs, match",
    [
        ([0.0, 1.0, 1.0], [0.0, 1.0, 2.0], "strictly increasing"),
        ([0.0, 2.0, 1.0], [0.0, 1.0, 2.0], "strictly increasing"),
        ([0.0, np.nan, 1.0], [0.0, 1.0, 2.0], "NaN or inf"),
        ([0.0, 1.0, 2.0], [0.0, np.inf, 2.0], "NaN or inf"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], "3 times but 2 values"),
        ([], [], "at least 2 samples"),
        ([0.0], [1.0], "at least 2 samples"),
    ],
)
def test_bad_signals(ts, xs, match):
    with pytest.raises(ValueError, match=match):
        nrt.Signal(np.asarray(ts, dtype=float), np.asarray(xs, dtype=float))


def test_traced_times_rejected_and_sampled_works_under_jit():
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(lambda t: nrt.Signal(t, t).xs)(jnp.arange(3.0))
    out = jax.jit(lambda x: nrt.Signal.sampled(x, fs=10.0).evaluate(0.05))(jnp.array([0.0, 2.0, 4.0]))
    assert float(out) == pytest.approx(1.0)
    with pytest.raises(Exception, match="NaN or inf"):
        jax.jit(lambda x: nrt.Signal.sampled(x, fs=10.0).xs)(jnp.array([0.0, jnp.nan]))


def test_metronome_and_pulse_trains():
    sig = nrt.metronome(2.0, 1.0, 100.0, amplitude=0.5)
    t = np.arange(101) / 100.0
    np.testing.assert_allclose(np.asarray(sig.xs), 0.5 * np.exp(2j * np.pi * 2.0 * t), atol=1e-12)
    assert sig.t1 == pytest.approx(1.0) and sig.fs == pytest.approx(100.0)
    tempo = jax.vmap(lambda f: nrt.metronome(f, 1.0, 100.0).xs[25])(jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(np.asarray(tempo), np.exp(2j * np.pi * np.array([1.0, 2.0]) * 0.25), atol=1e-12)
    pt = nrt.pulse_train([0.1, 0.5], 1.0, 1000.0, velocities=[1.0, 0.5], tau=0.03)
    tt = np.arange(1001) / 1000.0
    want = np.where(tt >= 0.1, np.exp(-(tt - 0.1) / 0.03), 0) + np.where(tt >= 0.5, 0.5 * np.exp(-(tt - 0.5) / 0.03), 0)
    np.testing.assert_allclose(np.asarray(pt.xs), want, atol=1e-12)
    clicks = nrt.click_train(2.0, 3.0, 100.0)
    peaks = np.flatnonzero(np.diff(np.asarray(clicks.xs)) > 0.5) + 1
    np.testing.assert_allclose(peaks / 100.0, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    with pytest.raises(ValueError, match="velocities"):
        nrt.pulse_train([0.1, 0.2], 1.0, 100.0, velocities=[1.0])
    with pytest.raises(ValueError, match="duration"):
        nrt.metronome(2.0, -1.0, 100.0)


def test_signal_is_a_pytree_under_filter_jit():
    sig = nrt.metronome(1.0, 1.0, 10.0)
    f = eqx.filter_jit(lambda s: s.evaluate(0.05))
    assert complex(f(sig)) == pytest.approx(complex((sig.xs[0] + sig.xs[1]) / 2))
