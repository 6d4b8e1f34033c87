"""The surrogate's plain TCN: causality (with attention), shapes, dropout keys."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import nrtjax as nrt
from nrtjax.surrogate import TCN


@pytest.mark.parametrize("hidden,heads,window", [(16, 2, 32), (128, 4, 64)])
def test_future_input_never_changes_past_output(getkey, hidden, heads, window):
    model = TCN(hidden=hidden, heads=heads, window=window, key=getkey())
    t, cut = 300, 170
    x = jr.normal(getkey(), (3, t))
    y = x.at[:, cut:].set(jr.normal(getkey(), (3, t - cut)) * 5)
    out_x, out_y = model(x), model(y)
    assert out_x.shape == (4, t)
    np.testing.assert_array_equal(np.asarray(out_x[:, :cut]), np.asarray(out_y[:, :cut]))
    assert not np.allclose(np.asarray(out_x[:, cut:]), np.asarray(out_y[:, cut:]))


def test_defaults_are_the_shipped_network(getkey):
    model = TCN(key=getkey())
    shipped = nrt.surrogate.load().net
    assert eqx.tree_equal(jax.tree.structure(model), jax.tree.structure(shipped))
    assert model.proj.in_channels == 3 and model.blocks[0].conv1.out_channels == 32
    assert [b.conv1.dilation[0] for b in model.blocks] == [1, 2, 4, 8, 16, 32]
    assert model.blocks[0].conv1.kernel_size == (5,)
    assert model.blocks[0].dropout.p == 0.0
    assert model.attention is not None and (model.attention.heads, model.attention.window) == (2, 128)
    assert model.receptive_field == 1 + 2 * 4 * 63


def test_attention_sees_only_its_window(getkey):
    model = TCN(hidden=8, n_blocks=1, kernel=2, heads=2, window=16, key=getkey())
    x = jr.normal(getkey(), (3, 100))
    # Inputs more than window + conv receptive field back do not influence step 99.
    y = x.at[:, :99 - 16 - model.receptive_field].set(0.0)
    np.testing.assert_allclose(np.asarray(model(x)[:, 99]), np.asarray(model(y)[:, 99]),
                               rtol=1e-12)


def test_dropout_needs_key_and_is_off_at_inference(getkey):
    model = TCN(hidden=8, n_blocks=2, heads=2, window=8, dropout=0.5, key=getkey())
    x = jr.normal(getkey(), (3, 40))
    with pytest.raises(ValueError, match="needs a key"):
        model(x, inference=False)
    a = model(x, key=getkey(), inference=False)
    b = model(x, key=getkey(), inference=False)
    assert not jnp.allclose(a, b)
    assert eqx.tree_equal(model(x), model(x))


def test_dtype_follows_parameters(getkey):
    model = TCN(hidden=8, n_blocks=1, heads=2, window=8, dtype=jnp.float32, key=getkey())
    assert model(jnp.ones((3, 10), jnp.float32)).dtype == jnp.float32
