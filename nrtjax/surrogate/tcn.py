"""The surrogate network: a causal TCN followed by causal (sliding-window) attention."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray


class TCNBlock(eqx.Module):
    """Two dilated causal convolutions with GELU and dropout, plus a residual path.

    Causal by left padding: `padding=((k-1) d, 0)`, so output $t$ sees inputs
    $\\le t$ only.
    """

    conv1: eqx.nn.Conv1d
    conv2: eqx.nn.Conv1d
    dropout: eqx.nn.Dropout

    def __init__(self, hidden: int, kernel: int, dilation: int, dropout: float, *,
                 dtype=None, key: PRNGKeyArray):
        k1, k2 = jr.split(key)
        pad = ((kernel - 1) * dilation, 0)
        self.conv1 = eqx.nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=(pad,),
                                   dtype=dtype, key=k1)
        self.conv2 = eqx.nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=(pad,),
                                   dtype=dtype, key=k2)
        self.dropout = eqx.nn.Dropout(dropout)

    def __call__(self, x: Float[Array, "hidden time"], *, key: PRNGKeyArray | None,
                 inference: bool) -> Float[Array, "hidden time"]:
        k1, k2 = (None, None) if key is None else jr.split(key)
        h = self.dropout(jax.nn.gelu(self.conv1(x)), key=k1, inference=inference)
        h = self.dropout(jax.nn.gelu(self.conv2(h)), key=k2, inference=inference)
        return x + h


class CausalAttention(eqx.Module):
    """Multi-head self-attention where step $t$ attends to steps $(t-W, t]$.

    Computed block-wise (blocks of `window` steps attend to themselves and the previous
    block), so the cost is $O(T W)$ and the result does not depend on where a sequence is
    cut, as long as the cut is at least `window` steps back.
    """

    qkv: eqx.nn.Conv1d
    out: eqx.nn.Conv1d
    heads: int = eqx.field(static=True)
    window: int = eqx.field(static=True)

    def __init__(self, hidden: int, heads: int, window: int, *, dtype=None, key: PRNGKeyArray):
        if hidden % heads:
            raise ValueError(f"hidden={hidden} must be divisible by heads={heads}.")
        k1, k2 = jr.split(key)
        self.qkv = eqx.nn.Conv1d(hidden, 3 * hidden, 1, dtype=dtype, key=k1)
        self.out = eqx.nn.Conv1d(hidden, hidden, 1, dtype=dtype, key=k2)
        self.heads, self.window = heads, window

    def __call__(self, x: Float[Array, "hidden time"]) -> Float[Array, "hidden time"]:
        c, t = x.shape
        w, h = self.window, self.heads
        nb = -(-t // w)
        pad = nb * w - t
        q, k, v = jnp.split(self.qkv(x), 3, axis=0)

        def blocks(a):  # (c, t) -> (heads, nb, w, c/heads), zero-padded at the end
            a = jnp.pad(a, ((0, 0), (0, pad)))
            return a.reshape(h, c // h, nb, w).transpose(0, 2, 3, 1)

        q, k, v = blocks(q), blocks(k), blocks(v)
        prev = lambda a: jnp.concatenate([jnp.zeros_like(a[:, :1]), a[:, :-1]], axis=1)
        k2 = jnp.concatenate([prev(k), k], axis=2)  # (h, nb, 2w, d)
        v2 = jnp.concatenate([prev(v), v], axis=2)
        scores = jnp.einsum("hbqd,hbkd->hbqk", q, k2) / math.sqrt(c // h)
        qi = jnp.arange(w)[:, None] + w
        ki = jnp.arange(2 * w)[None, :]
        mask = (ki <= qi) & (ki > qi - w)
        first = jnp.arange(nb)[:, None, None] == 0
        mask = mask[None] & ~(first & (ki < w)[None])  # nothing before the sequence start
        scores = jnp.where(mask[None], scores, -jnp.inf)
        att = jax.nn.softmax(scores, axis=-1)
        y = jnp.einsum("hbqk,hbkd->hbqd", att, v2)
        y = y.transpose(0, 3, 1, 2).reshape(c, nb * w)[:, :t]
        return x + self.out(y)


class TCN(eqx.Module):
    """The surrogate: input projection, residual TCN blocks (dilation $2^i$), causal
    attention, and a head giving $(\\cos\\phi, \\sin\\phi, \\hat f, \\hat r)$ per step.

    Frequencies are predicted as `freq_center + freq_scale * f_hat` and the amplitude as
    `1 + r_hat`, so every output channel is of order 1.

    The seed architecture is the default: 6 blocks, hidden 128, kernel 5, dropout 0.15,
    4 heads.
    """

    proj: eqx.nn.Conv1d
    blocks: tuple[TCNBlock, ...]
    attention: CausalAttention | None
    head: eqx.nn.Conv1d
    freq_center: float = eqx.field(static=True)
    freq_scale: float = eqx.field(static=True)

    def __init__(self, in_channels: int = 2, hidden: int = 128, n_blocks: int = 6,
                 kernel: int = 5, dropout: float = 0.15, heads: int = 4, window: int = 256,
                 *, freq_center: float = 2.0, freq_scale: float = 0.5, dtype=None,
                 key: PRNGKeyArray):
        """**Arguments:**

        - `in_channels`: input channels (2: real and imaginary part of the forcing).
        - `hidden`, `n_blocks`, `kernel`, `dropout`: TCN width, depth, kernel size, dropout.
        - `heads`: attention heads (0 for no attention); `window`: attention span in steps.
        - `freq_center`, `freq_scale`: the affine map of the frequency output (Hz).
        - `dtype`: parameter dtype (default float64 under x64, else float32).
        - `key`: PRNG key for initialisation.
        """
        keys = jr.split(key, n_blocks + 3)
        self.proj = eqx.nn.Conv1d(in_channels, hidden, 1, dtype=dtype, key=keys[0])
        self.blocks = tuple(TCNBlock(hidden, kernel, 2**i, dropout, dtype=dtype, key=keys[i + 1])
                            for i in range(n_blocks))
        self.attention = (CausalAttention(hidden, heads, window, dtype=dtype, key=keys[-2])
                          if heads > 0 else None)
        self.head = eqx.nn.Conv1d(hidden, 4, 1, dtype=dtype, key=keys[-1])
        self.freq_center, self.freq_scale = freq_center, freq_scale

    @property
    def receptive_field(self) -> int:
        """Steps of input history the convolutions see (attention adds `window`)."""
        return 1 + sum(2 * (b.conv1.kernel_size[0] - 1) * b.conv1.dilation[0] for b in self.blocks)

    def __call__(self, x: Float[Array, "channels time"], *, key: PRNGKeyArray | None = None,
                 inference: bool = True) -> Float[Array, "4 time"]:
        """Raw outputs `(cos, sin, f_hat, r_hat)`, shape `(4, time)`. Dropout is active
        only with `inference=False` (then `key` is required)."""
        if not inference and key is None:
            raise ValueError("TCN needs a key when inference=False (dropout).")
        keys = [None] * len(self.blocks) if key is None else list(jr.split(key, len(self.blocks)))
        h = self.proj(x)
        for block, k in zip(self.blocks, keys):
            h = block(h, key=k, inference=inference)
        if self.attention is not None:
            h = self.attention(h)
        return self.head(h)
