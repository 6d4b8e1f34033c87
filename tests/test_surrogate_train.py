"""Training: one step lowers the loss, resume is bit-for-bit, NaN stops cleanly."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from nrtjax import make_optimizer
from nrtjax.surrogate import (TCN, LossWeights, NonFiniteLossError, init_state, load_state,
                              make_step_fn, slow_lock_songs, total_loss, train)
from nrtjax.surrogate.train import apply_update, sample_batch


def _data(getkey, n=3, t=96):
    tt = jnp.arange(t) / 32.0
    phase = jnp.angle(jnp.exp(2j * jnp.pi * (1.5 + 0.2 * jr.uniform(getkey(), (n, 1))) * tt[None, :]))
    x = jnp.stack([jnp.cos(phase + 0.3), jnp.sin(phase + 0.3)], axis=1)
    return {"x": x, "phase": phase, "freq": jnp.full((n, t), 1.7), "amp": jnp.full((n, t), 0.9)}


def _model(getkey):
    return TCN(hidden=8, n_blocks=2, kernel=3, heads=2, window=16, dropout=0.1, key=getkey())


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
    other = init_state(TCN(hidden=16, n_blocks=2, kernel=3, heads=2, window=16, key=getkey()),
                       make_optimizer(lr=1e-2, total_steps=6, warmup_steps=2, weight_decay=0.0,
                                      clip_norm=1.0), key=getkey())
    with pytest.raises(ValueError, match="does not match"):
        load_state(ckpt, other)


def _indexed_data(n=10, t=64):
    """Songs whose input carries their index (channel 0) and time step (channel 1)."""
    song = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32)[:, None], (n, t))
    step = jnp.broadcast_to(jnp.arange(t, dtype=jnp.float32)[None, :], (n, t))
    zeros = jnp.zeros((n, t))
    return {"x": jnp.stack([song, step], axis=1), "phase": zeros, "freq": zeros, "amp": zeros,
            "hard": jnp.arange(n) % 5 == 3}  # songs 3 and 8


def test_hard_fraction_one_starts_only_flagged_songs(getkey):
    data = _indexed_data()
    b = sample_batch(data, key=getkey(), batch_size=256, crop=16, warm=8, hard_fraction=1.0)
    songs = np.asarray(b["x"][:, 0, 0])
    assert set(songs.tolist()) == {3.0, 8.0}
    assert np.all(np.asarray(b["x"][:, 1, 0]) == 0)  # every crop is a song's start
    assert np.all(np.asarray(b["mask"]) == 1)


def test_hard_fraction_mixes_in_the_given_share(getkey):
    data = _indexed_data()
    b = sample_batch(data, key=getkey(), batch_size=20000, crop=16, warm=8, hard_fraction=0.5)
    hard_share = np.mean(np.isin(np.asarray(b["x"][:, 0, 0]), [3.0, 8.0]))
    # half the crops from the flagged songs, the other half uniform over all 10 (2 flagged)
    assert hard_share == pytest.approx(0.5 + 0.5 * 0.2, abs=0.015)


def test_hard_fraction_zero_draws_as_without_flags(getkey):
    data = _indexed_data()
    key = getkey()
    plain = {k: v for k, v in data.items() if k != "hard"}
    a = sample_batch(plain, key=key, batch_size=64, crop=16, warm=8)
    b = sample_batch(data, key=key, batch_size=64, crop=16, warm=8, hard_fraction=0.0)
    assert bool(eqx.tree_equal(a, b))
    # and crops start at 0 about a fifth of the time (plus the uniform draws that land there)
    starts = np.asarray(a["x"][:, 1, 0])
    assert 0 < np.mean(starts == 0) < 0.6


def test_hard_offset_starts_flagged_crops_anywhere_in_the_first_steps(getkey):
    data = _indexed_data()
    key = getkey()
    b = sample_batch(data, key=key, batch_size=4000, crop=16, warm=8, hard_fraction=1.0,
                     hard_offset=10)
    assert set(np.asarray(b["x"][:, 0, 0]).tolist()) == {3.0, 8.0}
    starts = np.asarray(b["x"][:, 1, 0])
    assert set(starts.tolist()) == set(range(11))  # uniform over 0..10
    mask = np.asarray(b["mask"])
    # a crop that starts the song is scored throughout, a later one after its warm-up
    np.testing.assert_array_equal(mask[starts == 0], 1.0)
    np.testing.assert_array_equal(mask[starts > 0][:, :8], 0.0)
    np.testing.assert_array_equal(mask[starts > 0][:, 8:], 1.0)
    # hard_offset=0 draws exactly the song-start crops it drew before the option existed
    a = sample_batch(data, key=key, batch_size=64, crop=16, warm=8, hard_fraction=0.5)
    c = sample_batch(data, key=key, batch_size=64, crop=16, warm=8, hard_fraction=0.5,
                     hard_offset=0)
    assert bool(eqx.tree_equal(a, c))
    with pytest.raises(ValueError, match="hard_offset"):
        sample_batch(data, key=key, batch_size=4, crop=16, warm=8, hard_fraction=0.5,
                     hard_offset=10**6)


def test_hard_fraction_without_flags_says_what_is_missing(getkey):
    data = {k: v for k, v in _indexed_data().items() if k != "hard"}
    with pytest.raises(ValueError, match="slow_lock_songs"):
        sample_batch(data, key=getkey(), batch_size=4, crop=16, warm=8, hard_fraction=0.5)


def test_make_step_fn_rejects_bad_hard_fraction():
    opt = make_optimizer(lr=1e-2, total_steps=6, warmup_steps=2, weight_decay=0.0, clip_norm=1.0)
    with pytest.raises(ValueError, match="hard_fraction"):
        make_step_fn(opt, LossWeights(), batch_size=2, crop=48, warm=16, hard_fraction=1.5)


def test_slow_lock_songs_flags_late_departures():
    fs, t = 10.0, 301  # 30 s at 10 Hz
    freq = np.full((4, t), 2.0)
    freq[1, 60:70] = 1.5    # 0.5 Hz off at 6-7 s: flagged
    freq[2, 20:40] = 1.0    # off only before 5 s: not flagged
    freq[3, 60:70] = 2.2    # 0.2 Hz off: under the 0.3 Hz threshold
    flags = slow_lock_songs({"freq": freq}, fs=fs)
    assert flags.tolist() == [False, True, False, False]
    assert slow_lock_songs({"freq": freq}, fs=fs, threshold=0.1).tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match="window"):
        slow_lock_songs({"freq": freq}, fs=fs, window=(5.0, 40.0))
