"""Training: one step lowers the loss, resume is bit-for-bit, NaN stops cleanly."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from nrtjax import make_optimizer
from nrtjax.surrogate import (TCN, LossWeights, NonFiniteLossError, Surrogate, init_state,
                              load_state, make_step_fn, total_loss, train)
from nrtjax.surrogate.training import apply_update, sample_batch


def _data(getkey, n=3, t=96):
    tt = jnp.arange(t) / 32.0
    phase = jnp.angle(jnp.exp(2j * jnp.pi * (1.5 + 0.2 * jr.uniform(getkey(), (n, 1))) * tt[None, :]))
    x = jnp.stack([jnp.cos(phase + 0.3), jnp.sin(phase + 0.3)], axis=1)
    return {"x": x, "phase": phase, "freq": jnp.full((n, t), 1.7), "amp": jnp.full((n, t), 0.9)}


def _model(getkey):
    return Surrogate(TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16, dropout=0.1,
                         key=getkey()))


def test_one_step_reduces_loss_on_fixed_batch(getkey):
    data = _data(getkey)
    batch = {**{k: v for k, v in data.items()}, "mask": jnp.ones(data["phase"].shape)}
    model = _model(getkey)
    opt = make_optimizer(lr=1e-2, total_steps=10, warmup_steps=0, weight_decay=0.0, clip_norm=1.0)
    opt_state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    w = LossWeights()
    before, _ = total_loss(model, batch, w, key=None, inference=True)
    step = eqx.filter_jit(eqx.debug.assert_max_traces(apply_update, max_traces=1))
    model2, opt_state, loss0, _ = step(model, opt_state, batch, opt, w, key=None)
    after, _ = total_loss(model2, batch, w, key=None, inference=True)
    assert float(loss0) == pytest.approx(float(before), rel=1e-10)
    assert float(after) < float(before)
    step(model2, opt_state, batch, opt, w, key=None)  # same shapes: no retrace


def _setup(getkey):
    data = _data(getkey)
    opt = make_optimizer(lr=1e-2, total_steps=6, warmup_steps=2, weight_decay=1e-4, clip_norm=1.0)
    state = init_state(_model(getkey), opt, key=getkey())
    fn = make_step_fn(opt, LossWeights(), batch_size=2, crop=48, warm=16)
    return data, state, fn


def test_resume_is_bit_for_bit(getkey, tmp_path):
    data, state, fn = _setup(getkey)
    straight, _ = train(state, data, fn, steps=6, progress=False)
    ckpt = tmp_path / "state.eqx"
    half, _ = train(state, data, fn, steps=3, checkpoint=ckpt, checkpoint_every=3, progress=False)
    resumed, _ = train(state, data, fn, steps=6, checkpoint=ckpt, progress=False)
    assert int(resumed.step) == 6
    assert bool(eqx.tree_equal(straight, resumed))
    assert int(load_state(ckpt, state).step) == 6


def test_nan_loss_stops_and_keeps_last_good_checkpoint(getkey, tmp_path):
    data, state, fn = _setup(getkey)
    ckpt = tmp_path / "state.eqx"
    train(state, data, fn, steps=2, checkpoint=ckpt, checkpoint_every=1, progress=False)
    bad = {**data, "freq": data["freq"].at[:].set(jnp.nan)}
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        train(state, bad, fn, steps=4, checkpoint=ckpt, checkpoint_every=1, progress=False)
    good = load_state(ckpt, state)
    assert int(good.step) == 2
    leaves = jax.tree_util.tree_leaves(eqx.filter(good.model, eqx.is_inexact_array))
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves)


def test_checkpoint_of_other_config_gives_clear_error(getkey, tmp_path):
    data, state, fn = _setup(getkey)
    ckpt = tmp_path / "state.eqx"
    train(state, data, fn, steps=1, checkpoint=ckpt, progress=False)
    other = init_state(Surrogate(TCN(hidden=16, n_blocks=2, kernel=3, heads=2, window=16,
                                     key=getkey())),
                       make_optimizer(lr=1e-2, total_steps=6, warmup_steps=2, weight_decay=0.0,
                                      clip_norm=1.0), key=getkey())
    with pytest.raises(ValueError, match="does not match"):
        load_state(ckpt, other)


def test_sample_batch_crops_songs_and_masks_cut_history(getkey):
    # Songs whose input carries their index (channel 0) and time step (channel 1).
    n, t, crop, warm = 10, 64, 16, 8
    song = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32)[:, None], (n, t))
    step = jnp.broadcast_to(jnp.arange(t, dtype=jnp.float32)[None, :], (n, t))
    zeros = jnp.zeros((n, t))
    data = {"x": jnp.stack([song, step], axis=1), "phase": zeros, "freq": zeros, "amp": zeros}
    b = sample_batch(data, key=getkey(), batch_size=4000, crop=crop, warm=warm)
    x, mask = np.asarray(b["x"]), np.asarray(b["mask"])
    start = x[:, 1, 0]
    np.testing.assert_array_equal(x[:, 1], start[:, None] + np.arange(crop))  # contiguous
    assert np.all(x[:, 0] == x[:, :1, 0]) and set(x[:, 0, 0].tolist()) == set(range(n))
    assert 0.17 < np.mean(start == 0) < 0.25  # a fifth from the song start (plus chance)
    want = np.where(start[:, None] == 0, 1.0, (np.arange(crop) >= warm)[None, :])
    np.testing.assert_array_equal(mask, want)
