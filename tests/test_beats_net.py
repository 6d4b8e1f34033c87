"""The beat network's features, the TCN, its targets and loss, and its training (resume,
NaN stop), against references written here."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from nrtjax import _train
from nrtjax.audio.beat_eval import tempo_accuracy
from nrtjax.beats import BeatEnsemble, BeatNet, features
from nrtjax.beats import data as bdata
from nrtjax.beats import train as btrain
from nrtjax.beats.checkpoint import load_model, save_model
from nrtjax.beats.network import tempo_grid, tempo_log_prior


# --- features ---------------------------------------------------------------------------

@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000])
def test_frame_rate_is_exactly_100_per_second(sr):
    seconds = 7.0
    y = np.zeros(int(seconds * sr), np.float32)
    clicks = np.array([1.0, 2.345, 4.5, 6.01])
    for t in clicks:
        y[int(round(t * sr)):int(round(t * sr)) + 16] = 0.9
    x = features.spectrogram(y, sr)
    assert features.FPS == 100.0 and features.SAMPLE_RATE % features.HOP == 0
    assert x.shape == (features.N_BANDS, 1 + int(seconds * 100)) == (64, features.n_frames(y.size, sr))
    # frame i is centred at i / 100 s: the energy of a 1 ms click peaks at its frame
    energy = x.sum(axis=0)
    for t in clicks:
        near = np.arange(int(round(100 * t)) - 10, int(round(100 * t)) + 11)
        assert abs(near[np.argmax(energy[near])] - 100 * t) <= 1.0


def test_spectrogram_rejects_bad_audio():
    with pytest.raises(ValueError, match="mono"):
        features.spectrogram(np.zeros((100, 2)), 16000)
    with pytest.raises(ValueError, match="empty"):
        features.spectrogram(np.zeros(0), 16000)
    with pytest.raises(ValueError, match="NaN"):
        features.spectrogram(np.array([0.0, np.nan, 0.0]), 16000)
    with pytest.raises(ValueError, match="sr="):
        features.spectrogram(np.zeros(100), 0)


# --- network ----------------------------------------------------------------------------

_apply = eqx.filter_jit(lambda m, x: m(x))


def _net(getkey, causal=False, **kw):
    return BeatNet(bands=6, hidden=5, n_blocks=3, kernel=3, dropout=0.0, causal=causal,
                   dtype=jnp.float64, key=getkey(), **kw)


@pytest.mark.parametrize("causal", [False, True])
def test_receptive_field_and_causality(getkey, causal):
    model = _net(getkey, causal=causal)
    rf = 3 + 2 * (2 ** 3 - 1)  # kernel 3, dilations 1, 2, 4, plus the kernel-3 input conv
    assert model.receptive_field == rf
    x = jr.normal(getkey(), (6, 80), jnp.float64)
    t0 = 40
    diff = _apply(model, x.at[:, t0].add(1.0)) - _apply(model, x)
    changed = np.flatnonzero(np.any(np.asarray(diff) != 0, 0))
    # the positive flux at t0 + 1 also sees frame t0: the input reaches one frame further
    if causal:
        assert changed.min() == t0 and changed.max() == t0 + 1 + rf - 1
    else:
        half = (rf - 1) // 2
        assert changed.min() == t0 - half and changed.max() == t0 + 1 + half


@pytest.mark.parametrize("causal", [False, True])
def test_padding_with_length_is_exact(getkey, causal):
    model = _net(getkey, causal=causal)
    x = jr.normal(getkey(), (6, 50), jnp.float64)
    padded = jnp.concatenate([x, jnp.full((6, 30), 7.0)], axis=1)
    np.testing.assert_allclose(model(padded, length=50)[:, :50], _apply(model, x), rtol=0,
                               atol=1e-12)
    fn = eqx.filter_jit(eqx.debug.assert_max_traces(lambda m, a, n: m(a, length=n), max_traces=1))
    fn(model, padded, jnp.asarray(50))
    fn(model, padded, jnp.asarray(20))  # another length, same shape: no retrace


def test_normalisation_is_applied_and_not_trained(getkey):
    mean, std = jnp.arange(6.0), jnp.full(6, 2.0)
    model = _net(getkey, mean=mean, std=std)
    plain = eqx.tree_at(lambda m: (m.mean, m.std), model, (jnp.zeros(6), jnp.ones(6)))
    x = jr.normal(getkey(), (6, 30), jnp.float64)
    np.testing.assert_allclose(_apply(model, x), _apply(plain, (x - mean[:, None]) / std[:, None]),
                               atol=1e-12)
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m(x) ** 2)))(model)
    assert float(jnp.abs(grads.mean).max()) == 0.0 and float(jnp.abs(grads.std).max()) == 0.0
    mask = btrain.decay_mask(model)
    assert mask.mean is False and mask.std is False and mask.head.weight is True


def test_bad_hyperparameters_are_refused(getkey):
    with pytest.raises(ValueError, match="odd"):
        BeatNet(bands=4, kernel=4, key=getkey())
    with pytest.raises(ValueError, match="dropout"):
        BeatNet(bands=4, dropout=1.0, key=getkey())


# --- targets and loss -------------------------------------------------------------------

def test_targets_are_widened():
    y = bdata.targets(np.array([0.1, 0.504, 1.0]), np.array([0.1]), 101, fps=100.0)
    want = np.zeros(101)
    for i in (10, 50, 100):
        want[max(i - 1, 0):i + 2] = 0.5
    want[[10, 50, 100]] = 1.0
    np.testing.assert_array_equal(y[0], want)
    np.testing.assert_array_equal(np.flatnonzero(y[1]), [9, 10, 11])


def test_read_beats(tmp_path):
    p = tmp_path / "a.beats"
    p.write_text("0.5 1\n1.0 2\n\n1.5 1\n2.0\n")
    beats, down = bdata.read_beats(p)
    np.testing.assert_array_equal(beats, [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_array_equal(down, [0.5, 1.5])
    p.write_text("0.5 1\n0.4 2\n")
    with pytest.raises(ValueError, match="line 2"):
        bdata.read_beats(p)
    p.write_text("half past\n")
    with pytest.raises(ValueError, match="line 1"):
        bdata.read_beats(p)


def test_bce_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 2, 20)) * 3
    y = rng.choice([0.0, 0.5, 1.0], size=(3, 2, 20))
    mask = (rng.random((3, 20)) > 0.2).astype(float)
    w = btrain.BeatLossWeights(pos_weight=3.0, downbeat=0.5)
    loss, parts = btrain.bce_loss(jnp.asarray(logits), jnp.asarray(y), jnp.asarray(mask), w)
    p = 1 / (1 + np.exp(-logits))
    per = -(3.0 * y * np.log(p) + (1 - y) * np.log(1 - p))
    task = (per * mask[:, None, :]).sum(axis=(0, 2)) / mask.sum()
    np.testing.assert_allclose([parts["beat"], parts["downbeat"]], task, rtol=1e-10)
    np.testing.assert_allclose(loss, task[0] + 0.5 * task[1], rtol=1e-10)


def test_peak_pick():
    a = np.zeros(300)
    a[[50, 100, 103, 200]] = [0.9, 0.8, 0.5, 0.2]
    a[150:153] = 0.7  # a flat top counts once
    np.testing.assert_allclose(btrain.peak_pick(a, 100.0, threshold=0.3), [0.5, 1.0, 1.5])


# --- training ---------------------------------------------------------------------------

def _split(getkey, n_items=3, frames=120):
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(6, frames + 10 * i)).astype(np.float32) for i in range(n_items)]
    ys = []
    for x in xs:
        beats = np.arange(0.05, x.shape[1] / 100, 0.5)
        ys.append(bdata.targets(beats, beats[::4], x.shape[1]))
        x[:, np.round(beats * 100).astype(int)] += 3.0
    off = np.concatenate([[0], np.cumsum([x.shape[1] for x in xs])])
    return {"x": np.concatenate(xs, 1), "y": np.concatenate(ys, 1), "offsets": off,
            "names": np.array([f"i{i}" for i in range(n_items)])}


def test_pack_and_sample_crops_inside_items(getkey):
    split = _split(getkey)
    split["x"][0] = np.arange(split["x"].shape[1])  # band 0 carries the frame index
    packed = bdata.pack(split, crop=125)  # item 0 (120 frames) is padded with 5
    assert packed["x"].shape[1] == 125 + 130 + 140 and packed["mask"].sum() == 390
    assert packed["starts"].tolist() == [0] + list(range(125, 131)) + list(range(255, 271))
    b = btrain.sample_batch({k: jnp.asarray(v) for k, v in packed.items()}, key=getkey(),
                            batch_size=64, crop=125)
    first = np.asarray(b["x"][:, 0, 0])
    assert set(first.tolist()) <= {0.0} | set(range(120, 126)) | set(range(250, 266))


def test_tempo_augmentation_moves_spectrogram_and_beats_together(getkey):
    """`stretch`: every crop is the source read at frame j r for one rate r per crop, the
    beats moved to round(k / r) with widened neighbours, the mask where the source is
    real; rates stay within [1/(1+s), 1+s]."""
    frames, period, crop, stretch = 900, 23, 200, 0.25
    beats = np.arange(7, frames, period) / 100.0
    split = {"x": np.tile(np.arange(frames, dtype=np.float32), (3, 1)),  # the frame index
             "y": bdata.targets(beats, beats[::4], frames),
             "offsets": np.array([0, frames]), "names": np.array(["a"])}
    src = btrain.source_frames(crop, stretch)
    assert src >= (crop - 1) * (1 + stretch) + 2 and btrain.source_frames(crop) == crop
    packed = {k: jnp.asarray(v) for k, v in bdata.pack(split, src).items()}
    b = btrain.sample_batch(packed, key=getkey(), batch_size=32, crop=crop, stretch=stretch)
    x, y, m = (np.asarray(b[k]) for k in ("x", "y", "mask"))
    assert x.shape == (32, 3, crop) and y.shape == (32, 2, crop) and m.shape == (32, crop)
    s0, rate = x[:, 0, 0], (x[:, 0, -1] - x[:, 0, 0]) / (crop - 1)
    assert np.all(rate >= 1 / (1 + stretch) - 1e-5) and np.all(rate <= 1 + stretch + 1e-5)
    assert rate.max() / rate.min() > 1.2  # the rates vary
    for i in range(32):
        np.testing.assert_allclose(x[i, 0], s0[i] + rate[i] * np.arange(crop), atol=1e-3)
        for row, times in ((0, beats), (1, beats[::4])):
            k = np.round(times * 100) - s0[i]
            want = np.zeros(crop)
            j = np.round(k[(k >= 0) & (k < src)] / rate[i]).astype(int)
            j = j[j < crop]
            for shift in (-1, 1):
                jj = j + shift
                want[jj[(jj >= 0) & (jj < crop)]] = bdata.WIDEN
            want[j] = 1.0
            np.testing.assert_array_equal(y[i, row], want)
        assert np.all(m[i] == 1.0)
    plain = btrain.sample_batch(packed, key=getkey(), batch_size=4, crop=crop)
    assert np.all(np.diff(np.asarray(plain["x"][:, 0]), axis=-1) == 1.0)


@pytest.fixture(scope="module")
def setup():
    """Packed data, an optimizer and one jitted step shared by the training tests (one
    compilation); `make(key)` gives a fresh state."""
    packed = {k: jnp.asarray(v) for k, v in bdata.pack(_split(None), crop=64).items()}
    opt = _train.make_optimizer(lr=1e-2, total_steps=30, warmup_steps=2, weight_decay=1e-4,
                                clip_norm=1.0, decay_mask=btrain.decay_mask)
    fn = btrain.make_step_fn(opt, btrain.BeatLossWeights(pos_weight=2.0), batch_size=2, crop=64)

    def make(key):
        k1, k2 = jr.split(key)
        model = BeatNet(bands=6, hidden=4, n_blocks=2, kernel=3, dropout=0.1, key=k1)
        return _train.init_state(model, opt, key=k2)

    return packed, make, fn


def _setup(getkey, setup):
    packed, make, fn = setup
    return packed, make(getkey()), fn


def test_training_lowers_the_loss(getkey, setup):
    packed, state, fn = _setup(getkey, setup)
    batch = btrain.sample_batch(packed, key=getkey(), batch_size=6, crop=64)
    w = btrain.BeatLossWeights(pos_weight=2.0)
    loss = eqx.filter_jit(lambda m: btrain.batch_loss(m, batch, w, key=None)[0])
    before = loss(state.model)
    state, log = _train.train(state, packed, fn, steps=30, progress=False)
    after = loss(state.model)
    assert float(after) < 0.7 * float(before)


def test_resume_is_bit_for_bit(getkey, tmp_path, setup):
    packed, state, fn = _setup(getkey, setup)
    straight, _ = _train.train(state, packed, fn, steps=6, progress=False)
    ckpt = tmp_path / "state.eqx"
    _train.train(state, packed, fn, steps=3, checkpoint=ckpt, checkpoint_every=3, progress=False)
    resumed, _ = _train.train(state, packed, fn, steps=6, checkpoint=ckpt, progress=False)
    assert int(resumed.step) == 6 and bool(eqx.tree_equal(straight, resumed))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(getkey, tmp_path, setup):
    packed, state, fn = _setup(getkey, setup)
    ckpt = tmp_path / "state.eqx"
    _train.train(state, packed, fn, steps=2, checkpoint=ckpt, checkpoint_every=1, progress=False)
    bad = {**packed, "x": packed["x"].at[:, :].set(jnp.nan)}
    with pytest.raises(_train.NonFiniteLossError, match="last good checkpoint"):
        _train.train(state, bad, fn, steps=4, checkpoint=ckpt, checkpoint_every=1, progress=False)
    good = _train.load_state(ckpt, state)
    assert int(good.step) == 2
    leaves = jax.tree_util.tree_leaves(eqx.filter(good.model, eqx.is_inexact_array))
    assert all(np.all(np.isfinite(np.asarray(a))) for a in leaves)


def test_on_checkpoint_can_stop_early(getkey, setup):
    packed, state, fn = _setup(getkey, setup)
    seen = []
    state, _ = _train.train(state, packed, fn, steps=6, checkpoint_every=2, progress=False,
                            on_checkpoint=lambda s: seen.append(int(s.step)) or len(seen) == 2)
    assert seen == [2, 4] and int(state.step) == 4


def test_save_and_load_model(getkey, tmp_path):
    model = BeatNet(bands=6, hidden=4, n_blocks=2, kernel=3, mean=np.arange(6.0),
                    std=np.ones(6), key=getkey())
    path = save_model(tmp_path / "m.eqx", model, info={"note": "x"})
    back = load_model(path)
    assert bool(eqx.tree_equal(model, back))
    (tmp_path / "m.json").write_text((tmp_path / "m.json").read_text().replace('"hidden": 4',
                                                                               '"hidden": 5'))
    with pytest.raises(ValueError, match="does not match"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="train_beats"):
        load_model(tmp_path / "none.eqx")


def test_ensemble_averages_its_members(getkey, tmp_path):
    """A BeatEnsemble's activation is the mean of its networks' sigmoid outputs, each
    computed alone here (padding by `length` too); it saves, loads and splits back."""
    nets = [BeatNet(bands=6, hidden=4, n_blocks=2, kernel=3, mean=np.arange(6.0) + i,
                    std=np.ones(6) * (1 + i), dtype=jnp.float64, key=getkey()) for i in range(3)]
    ens = BeatEnsemble(nets)
    x = jr.normal(getkey(), (6, 40), jnp.float64)
    each = [np.asarray(jax.nn.sigmoid(_apply(m, x))) for m in nets]
    np.testing.assert_allclose(ens.activation(x), np.mean(each, axis=0), rtol=1e-12)
    padded = jnp.pad(x, ((0, 0), (0, 24)))
    np.testing.assert_allclose(ens.activation(padded, length=40)[:, :40], np.mean(each, axis=0),
                               rtol=1e-12)
    assert ens.n_members == 3 and ens.bands == 6 and ens.receptive_field == nets[0].receptive_field
    assert bool(eqx.tree_equal(ens.member(1), nets[1]))
    path = save_model(tmp_path / "e.eqx", ens)
    back = load_model(path)
    assert isinstance(back, BeatEnsemble) and bool(eqx.tree_equal(back, ens))
    with pytest.raises(ValueError, match="at least two"):
        BeatEnsemble(nets[:1])
    with pytest.raises(ValueError, match="one shape"):
        BeatEnsemble([nets[0], BeatNet(bands=6, hidden=5, n_blocks=2, kernel=3, dtype=jnp.float64,
                                       key=getkey())])


def test_extra_corpora_join_the_splits(tmp_path):
    """`train_beats extra_corpora=[...]`: every corpus's train and valid items are read,
    an extra corpus's names carry its version, and the card names every corpus."""
    from experiments import train_beats

    from ._beat_corpus import write_corpus

    a = write_corpus(tmp_path / "a", n_items=6, seconds=4.0, seed=0)
    b = write_corpus(tmp_path / "b", n_items=5, seconds=4.0, seed=1)
    cfg = train_beats.Config(corpus=str(a), extra_corpora=[str(b)],
                             cache_dir=str(tmp_path / "cache"), progress=False)
    train, valid, card = train_beats.load_data(cfg)
    assert card["n_train"] == 2 + 1 and card["n_valid"] == 2 + 2
    assert card["train_items"] == ["synth000", "synth001", "synthetic-synth000"]
    assert [e["path"] for e in card["extra"]] == [str(b)]
    assert train["x"].shape[1] == train["offsets"][-1] == 3 * 401  # 4 s: 400 frames + 1 (centred)


def test_stretch_out_of_range_is_refused():
    from experiments import train_beats
    from experiments._job import ConfigError

    assert train_beats.OptimConfig().stretch == 0.0
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="optim.stretch"):
            train_beats.OptimConfig(stretch=bad)


def test_init_from_checks_the_checkpoint(getkey, tmp_path):
    """`train_beats init_from=PATH`: a network of other settings, or an ensemble, is
    refused with the fix; a matching one is the start."""
    from experiments import train_beats
    from experiments._job import ConfigError

    def net():
        return BeatNet(bands=6, hidden=4, n_blocks=2, kernel=3, key=getkey())

    one = save_model(tmp_path / "one.eqx", net())
    ens = save_model(tmp_path / "ens.eqx", BeatEnsemble([net(), net()]))
    model = train_beats.ModelConfig(hidden=4, n_blocks=2, kernel=3)
    cfg = train_beats.Config(corpus="x", init_from=str(one), model=model)
    assert isinstance(train_beats.build_model(cfg, {}, getkey()), BeatNet)
    with pytest.raises(ConfigError, match="model settings"):
        train_beats.build_model(train_beats.Config(corpus="x", init_from=str(one)), {}, getkey())
    with pytest.raises(ConfigError, match="ensemble of 2"):
        train_beats.build_model(train_beats.Config(corpus="x", init_from=str(ens), model=model),
                                {}, getkey())


# --- the tempo head ---------------------------------------------------------------------


def test_tempo_head_shapes_padding_and_grid(getkey):
    """The tempo head pools the features over the real frames only: a padded input with
    `length` gives the tempo logits of the unpadded input; a network without the head
    gives None, and its beat output is the plain `__call__`'s."""
    model = _net(getkey, tempo_bins=8)
    x = jr.normal(getkey(), (6, 50), jnp.float64)
    logits, tempo = model.forward(x)
    assert logits.shape == (2, 50) and tempo.shape == (8,)
    np.testing.assert_allclose(logits, _apply(model, x), atol=1e-12)
    padded = jnp.concatenate([x, jnp.full((6, 30), 7.0)], axis=1)
    _, tempo_padded = model.forward(padded, length=50)
    np.testing.assert_allclose(tempo_padded, tempo, atol=1e-12)
    act, probs = model.outputs(x)
    np.testing.assert_allclose(probs, jax.nn.softmax(tempo), atol=1e-12)
    np.testing.assert_allclose(act, model.activation(x), atol=1e-12)
    assert _net(getkey).forward(x)[1] is None and _net(getkey).outputs(x)[1] is None
    grid = tempo_grid(80)
    assert grid[0] == pytest.approx(30.0) and grid[-1] == pytest.approx(300.0)
    np.testing.assert_allclose(np.diff(np.log2(grid)), np.log2(10) / 79)
    with pytest.raises(ValueError, match="tempo_bins"):
        _net(getkey, tempo_bins=1)


def test_tempo_log_prior_interpolates_in_log_tempo():
    grid = tempo_grid(5)
    p = np.array([0.1, 0.4, 1e-6, 0.3, 0.2])
    np.testing.assert_allclose(tempo_log_prior(p, grid), np.log([0.1, 0.4, 1e-3, 0.3, 0.2]))
    mid = np.sqrt(grid[0] * grid[1])  # halfway in log tempo
    assert tempo_log_prior(p, [mid])[0] == pytest.approx(0.5 * (np.log(0.1) + np.log(0.4)))
    assert tempo_log_prior(p, [10.0, 1000.0]).tolist() == pytest.approx(np.log([0.1, 0.2]))


def test_local_tempo_and_the_crops_tempo_target(getkey):
    """`local_tempo` is 60 fps over the interval between the beats around each frame (0
    outside them); a crop's target is the median over its frames where at least half of
    them have one, times the crop's rate r under tempo augmentation."""
    frames = 700
    idx = np.concatenate([np.arange(50, 300, 25), np.arange(300, 551, 50)])
    y = bdata.targets(idx / 100, idx[:0], frames)
    t = bdata.local_tempo(y)
    assert np.all(t[:50] == 0) and np.all(t[550:] == 0)
    np.testing.assert_allclose(t[50:300], 240.0)
    np.testing.assert_allclose(t[300:550], 120.0)
    split = {"x": np.tile(np.arange(frames, dtype=np.float32), (3, 1)), "y": y,
             "offsets": np.array([0, frames]), "names": np.array(["a"])}

    def oracle(tempo):
        known = tempo[tempo > 0]
        return float(np.median(known)) if known.size >= 0.5 * tempo.size else 0.0

    crop = 150
    packed = {k: jnp.asarray(v) for k, v in bdata.pack(split, crop).items()}
    b = btrain.sample_batch(packed, key=getkey(), batch_size=64, crop=crop)
    starts = np.asarray(b["x"][:, 0, 0]).astype(int)
    want = [oracle(t[s:s + crop]) for s in starts]
    np.testing.assert_allclose(np.asarray(b["tempo"]), want, rtol=1e-6)
    assert {0.0, 120.0, 240.0} <= set(np.round(want).tolist())  # all three kinds were drawn
    without = {k: v for k, v in packed.items() if k != "tempo"}  # packed by hand, no tempo
    assert np.all(np.asarray(btrain.sample_batch(without, key=getkey(), batch_size=4,
                                                 crop=crop)["tempo"]) == 0)
    stretch = 0.3
    packed = {k: jnp.asarray(v)
              for k, v in bdata.pack(split, btrain.source_frames(crop, stretch)).items()}
    b = btrain.sample_batch(packed, key=getkey(), batch_size=64, crop=crop, stretch=stretch)
    x = np.asarray(b["x"][:, 0])
    for i in range(64):
        rate = (x[i, -1] - x[i, 0]) / (crop - 1)
        src = np.floor(x[i] + 1e-4).astype(int)
        assert float(b["tempo"][i]) == pytest.approx(oracle(t[src]) * rate, rel=1e-3)


def test_tempo_target_and_loss():
    grid = tempo_grid(80)
    bpm = jnp.asarray([grid[10], 100.0, 0.0, 400.0])
    target = np.asarray(btrain.tempo_target(bpm, grid))
    np.testing.assert_allclose(target[:2].sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(target[2:] == 0)  # no tempo, or outside the grid: no target
    assert np.argmax(target[0]) == 10 and target[0, 9] == pytest.approx(target[0, 11])
    sd = btrain.TEMPO_SIGMA_OCTAVES
    assert target[0, 11] / target[0, 10] == pytest.approx(
        np.exp(-0.5 * (np.log2(grid[11] / grid[10]) / sd) ** 2))
    logits = np.random.default_rng(0).normal(size=(4, 80))
    logq = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
    want = np.mean([-np.sum(target[i] * logq[i]) for i in range(2)])
    assert float(btrain.tempo_loss(jnp.asarray(logits), bpm, grid)) == pytest.approx(want)
    assert float(btrain.tempo_loss(jnp.asarray(logits), jnp.zeros(4), grid)) == 0.0
    # the validation's Acc1/Acc2 are those of the evaluation (reference first)
    assert tempo_accuracy(100.0, 101.0) == (True, True)
    assert tempo_accuracy(100.0, 199.0) == (False, True)
    assert tempo_accuracy(100.0, 150.0) == (False, False)


def test_training_with_a_tempo_head(getkey, tmp_path):
    """The tempo head trains with the beats (its loss falls on items of two tempi),
    saves and loads (a card from before the head loads as no head), and an ensemble
    averages its members' tempo probabilities."""
    rng = np.random.default_rng(3)
    xs, ys = [], []
    for period in (25, 50, 25, 50):
        x = rng.normal(size=(6, 400)).astype(np.float32)
        beats = np.arange(10, 400, period)
        x[:, beats] += 3.0
        xs.append(x)
        ys.append(bdata.targets(beats / 100, beats[::4] / 100, 400))
    split = {"x": np.concatenate(xs, 1), "y": np.concatenate(ys, 1),
             "offsets": np.arange(5) * 400, "names": np.array(list("abcd"))}
    packed = {k: jnp.asarray(v) for k, v in bdata.pack(split, crop=200).items()}
    weights = btrain.BeatLossWeights(tempo=1.0)
    opt = _train.make_optimizer(lr=1e-2, total_steps=60, warmup_steps=2, weight_decay=0.0,
                                clip_norm=1.0, decay_mask=btrain.decay_mask)
    fn = btrain.make_step_fn(opt, weights, batch_size=4, crop=200)
    model = BeatNet(bands=6, hidden=6, n_blocks=2, kernel=3, dropout=0.0, tempo_bins=40,
                    key=getkey())
    batch = btrain.sample_batch(packed, key=getkey(), batch_size=8, crop=200)
    tempo = eqx.filter_jit(lambda m: btrain.batch_loss(m, batch, weights, key=None)[1]["tempo"])
    before = float(tempo(model))
    state, _ = _train.train(_train.init_state(model, opt, key=getkey()), packed, fn, steps=60,
                            progress=False)
    assert float(tempo(state.model)) < 0.5 * before
    metrics = btrain.evaluate(state.model, split, weights, fps=100.0, bucket=100)
    assert {"loss_tempo", "tempo_acc1", "tempo_acc2"} <= set(metrics)
    path = save_model(tmp_path / "t.eqx", state.model)
    assert bool(eqx.tree_equal(load_model(path), state.model))
    plain = BeatNet(bands=6, hidden=4, n_blocks=2, kernel=3, key=getkey())
    path = save_model(tmp_path / "p.eqx", plain)
    card = json.loads((tmp_path / "p.json").read_text())
    del card["model"]["tempo_bins"]
    (tmp_path / "p.json").write_text(json.dumps(card))
    assert load_model(path).tempo is None
    other = BeatNet(bands=6, hidden=6, n_blocks=2, kernel=3, dropout=0.0, tempo_bins=40,
                    key=getkey())
    ens = BeatEnsemble([state.model, other])
    x = jnp.asarray(split["x"][:, :300])
    _, p = ens.outputs(x)
    np.testing.assert_allclose(p, 0.5 * (state.model.outputs(x)[1] + other.outputs(x)[1]),
                               rtol=1e-5)
