"""The beat activation network: a temporal convolutional network (TCN) from the mel
spectrogram to beat and downbeat activations (Davies & Böck 2019; Böck & Davies 2020).

Input: the spectrogram of [`spectrogram`][nrtjax.beats.features.spectrogram], shape
`(bands, time)` at 100 frames/s, normalised by the training set's per-band mean and
standard deviation (stored in the model, not trained), with its half-wave rectified first
difference over time stacked below it (the spectral flux that marks onsets). A kernel-3
convolution maps the `2 bands` channels to `hidden`, then `n_blocks` residual blocks with
dilations $1, 2, 4, \\ldots, 2^{n-1}$ (each: dilated convolution, ELU, dropout, 1x1
convolution, plus the block's input), and a 1x1 head gives two logits per frame, beat and
downbeat. With `tempo_bins` > 0 a tempo head (Böck, Davies & Knees 2019) averages the
last block's features over the whole input and maps them to logits over `tempo_bins`
tempi log-spaced over [`TEMPO_RANGE_BPM`][nrtjax.beats.network.TEMPO_RANGE_BPM]
([`tempo_grid`][]): a global read of the metrical level that the frame-wise beat output,
which sees about 10 s, cannot give. Non-causal by default (each block's convolution is
centred); `causal=True` pads on the left only, so the output at frame $t$ sees frames
$\\le t$ (for streaming).

The receptive field is $3 + (k - 1)(2^n - 1)$ frames ($k$ the kernel): with $k = 5$ and
$n = 8$, 1023 frames, about 10 s.

**References:** Davies, M. E. P. & Böck, S. (2019). Temporal convolutional networks for
musical audio beat tracking. EUSIPCO. Böck, S. & Davies, M. E. P. (2020). Deconstruct,
analyse, reconstruct: how to improve tempo, beat, and downbeat estimation. ISMIR.
Böck, S., Davies, M. E. P. & Knees, P. (2019). Multi-task learning of tempo and beat:
learning one to improve the other. ISMIR.
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from numpy.typing import ArrayLike
from jaxtyping import Array, Float, PRNGKeyArray

HYPERPARAMETERS = ("bands", "hidden", "n_blocks", "kernel", "dropout", "causal", "tempo_bins")
"""The settings that define a [`BeatNet`][]'s shape (saved in its checkpoint's card)."""

TEMPO_RANGE_BPM = (30.0, 300.0)
"""The slowest and fastest tempo of the tempo head's grid (beats per minute)."""


def tempo_grid(bins: int) -> np.ndarray:
    """The tempo head's `bins` tempi (BPM), log-spaced over
    [`TEMPO_RANGE_BPM`][nrtjax.beats.network.TEMPO_RANGE_BPM] (80 bins: 24 per octave)."""
    if bins < 2:
        raise ValueError(f"A tempo grid needs at least 2 bins, got {bins}.")
    return np.geomspace(*TEMPO_RANGE_BPM, bins)


def tempo_log_prior(tempo: ArrayLike, bpm: ArrayLike, floor: float = 1e-3) -> np.ndarray:
    """$\\log p$ of the tempo head's probabilities `tempo` (over
    [`tempo_grid`][]`(tempo.size)`), linearly interpolated in $\\log$ tempo at `bpm`
    (held at the grid's ends outside it), each bin's probability floored at `floor`
    (a confident head never rules a tempo out)."""
    grid = np.log2(tempo_grid(np.size(tempo)))
    logp = np.log(np.maximum(np.asarray(tempo, np.float64), floor))
    return np.interp(np.log2(np.asarray(bpm, np.float64)), grid, logp)


def _padding(kernel: int, dilation: int, causal: bool) -> tuple[int, int]:
    total = (kernel - 1) * dilation
    return (total, 0) if causal else (total // 2, total - total // 2)


class BeatBlock(eqx.Module):
    """One residual TCN block: dilated convolution, ELU, dropout, 1x1 convolution, plus
    the input."""

    conv: eqx.nn.Conv1d
    mix: eqx.nn.Conv1d
    dropout: eqx.nn.Dropout

    def __init__(self, hidden: int, kernel: int, dilation: int, dropout: float, *,
                 causal: bool, dtype=None, key: PRNGKeyArray):
        k1, k2 = jr.split(key)
        self.conv = eqx.nn.Conv1d(hidden, hidden, kernel, dilation=dilation,
                                  padding=(_padding(kernel, dilation, causal),), dtype=dtype,
                                  key=k1)
        self.mix = eqx.nn.Conv1d(hidden, hidden, 1, dtype=dtype, key=k2)
        self.dropout = eqx.nn.Dropout(dropout)

    def __call__(self, x: Float[Array, "hidden time"], *, key: PRNGKeyArray | None,
                 inference: bool) -> Float[Array, "hidden time"]:
        h = self.dropout(jax.nn.elu(self.conv(x)), key=key, inference=inference)
        return x + self.mix(h)


class BeatNet(eqx.Module):
    """Spectrogram -> beat and downbeat logits, shape `(2, time)` (row 0 beat, row 1
    downbeat); `jax.nn.sigmoid` of them are the activations. With a tempo head,
    [`forward`][nrtjax.beats.network.BeatNet.forward] also gives logits over
    [`tempo_grid`][]`(tempo_bins)`."""

    mean: Float[Array, " bands"]
    std: Float[Array, " bands"]
    inp: eqx.nn.Conv1d
    blocks: list[BeatBlock]
    head: eqx.nn.Conv1d
    tempo: eqx.nn.Linear | None
    bands: int = eqx.field(static=True)
    hidden: int = eqx.field(static=True)
    n_blocks: int = eqx.field(static=True)
    kernel: int = eqx.field(static=True)
    dropout: float = eqx.field(static=True)
    causal: bool = eqx.field(static=True)
    tempo_bins: int = eqx.field(static=True)

    def __init__(self, *, bands: int, hidden: int = 32, n_blocks: int = 8, kernel: int = 5,
                 dropout: float = 0.1, causal: bool = False, tempo_bins: int = 0, mean=None,
                 std=None, dtype=None, key: PRNGKeyArray):
        """**Arguments:**

        - `bands`: spectrogram bands (input rows).
        - `hidden`: channels of every block.
        - `n_blocks`: residual blocks, dilations $1, 2, \\ldots, 2^{n-1}$.
        - `kernel`: odd kernel size of the dilated convolutions.
        - `dropout`: dropout rate inside the blocks (training only).
        - `causal`: left-padded convolutions (output $t$ sees input $\\le t$).
        - `tempo_bins`: size of the tempo head's grid ([`tempo_grid`][]); 0 for no
            tempo head.
        - `mean`, `std`: per-band input normalisation, shape `(bands,)` (default 0 and 1).
        - `key`: PRNG key for the initial weights.
        """
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel={kernel} must be odd (a centred convolution).")
        if bands < 1 or hidden < 1 or n_blocks < 1:
            raise ValueError(f"bands={bands}, hidden={hidden} and n_blocks={n_blocks} must be "
                             ">= 1.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout} must lie in [0, 1).")
        if tempo_bins != 0 and tempo_bins < 2:
            raise ValueError(f"tempo_bins={tempo_bins}: use 0 (no tempo head) or >= 2.")
        dtype = jnp.float32 if dtype is None else dtype
        keys = jr.split(key, n_blocks + 2)
        self.mean = jnp.zeros(bands, dtype) if mean is None else jnp.asarray(mean, dtype)
        self.std = jnp.ones(bands, dtype) if std is None else jnp.asarray(std, dtype)
        if self.mean.shape != (bands,) or self.std.shape != (bands,):
            raise ValueError(f"mean and std must have shape ({bands},).")
        self.inp = eqx.nn.Conv1d(2 * bands, hidden, 3, padding=(_padding(3, 1, causal),),
                                 dtype=dtype, key=keys[0])
        self.blocks = [BeatBlock(hidden, kernel, 2 ** i, dropout, causal=causal, dtype=dtype,
                                 key=keys[i + 1]) for i in range(n_blocks)]
        self.head = eqx.nn.Conv1d(hidden, 2, 1, dtype=dtype, key=keys[-1])
        self.tempo = (eqx.nn.Linear(hidden, tempo_bins, dtype=dtype, key=jr.fold_in(key, 1))
                      if tempo_bins else None)
        self.bands, self.hidden, self.n_blocks = bands, hidden, n_blocks
        self.kernel, self.dropout, self.causal = kernel, dropout, causal
        self.tempo_bins = int(tempo_bins)

    @property
    def hyperparameters(self) -> dict:
        """`{name: value}` of [`HYPERPARAMETERS`][nrtjax.beats.network.HYPERPARAMETERS]."""
        return {k: getattr(self, k) for k in HYPERPARAMETERS}

    @property
    def dtype(self):
        """The weights' dtype."""
        return self.inp.weight.dtype

    @property
    def receptive_field(self) -> int:
        """Frames of input that one output frame depends on."""
        return 3 + (self.kernel - 1) * (2 ** self.n_blocks - 1)

    def __call__(self, x: Float[Array, "bands time"], *, length=None,
                 key: PRNGKeyArray | None = None, inference: bool = True) -> Float[Array, "2 time"]:
        """**Arguments:** `x` the spectrogram; `length` (optional, may be traced): only
        the first `length` frames are real, the rest padding, and the output on them is
        exactly that of `x[:, :length]` (every convolution sees zeros past `length`, as
        its own padding gives), so inputs padded to a few fixed sizes share compilations;
        `key` for dropout (training, with `inference=False`).

        **Returns:** the beat and downbeat logits.
        """
        return self.head(jax.nn.elu(self._features(x, length, key, inference)))

    def forward(self, x: Float[Array, "bands time"], *, length=None,
                key: PRNGKeyArray | None = None, inference: bool = True
                ) -> tuple[Float[Array, "2 time"], Float[Array, " tempo_bins"] | None]:
        """The beat and downbeat logits (as `__call__`) and the tempo head's logits over
        [`tempo_grid`][]`(tempo_bins)` (`None` without a tempo head), from one pass. The
        tempo head averages the features over the first `length` frames (all by
        default)."""
        h = jax.nn.elu(self._features(x, length, key, inference))
        if self.tempo is None:
            return self.head(h), None
        if length is None:
            pooled = jnp.mean(h, axis=-1)
        else:
            real = (jnp.arange(h.shape[-1]) < length).astype(h.dtype)
            pooled = h @ real / jnp.maximum(jnp.sum(real), 1.0)
        return self.head(h), self.tempo(pooled)

    def _features(self, x, length, key, inference):
        mean = jax.lax.stop_gradient(self.mean)[:, None]
        std = jax.lax.stop_gradient(self.std)[:, None]
        z = (x.astype(self.inp.weight.dtype) - mean) / std
        flux = jnp.maximum(jnp.diff(z, axis=-1, prepend=z[:, :1]), 0.0)
        real = None if length is None else jnp.arange(x.shape[-1])[None, :] < length

        def cut(a):
            return a if real is None else jnp.where(real, a, jnp.zeros((), a.dtype))

        h = self.inp(cut(jnp.concatenate([z, flux], axis=0)))
        keys = [None] * self.n_blocks if key is None else list(jr.split(key, self.n_blocks))
        for block, k in zip(self.blocks, keys):
            h = block(cut(h), key=k, inference=inference)
        return h

    def activation(self, x: Float[Array, "bands time"], *, length=None) -> Float[Array, "2 time"]:
        """The beat and downbeat activations (sigmoid of the logits; inference mode)."""
        return jax.nn.sigmoid(self(x, length=length, inference=True))

    def outputs(self, x: Float[Array, "bands time"], *, length=None
                ) -> tuple[Float[Array, "2 time"], Float[Array, " tempo_bins"] | None]:
        """The activations and the tempo head's probabilities over
        [`tempo_grid`][]`(tempo_bins)` (`None` without a tempo head), inference mode."""
        logits, tempo = self.forward(x, length=length, inference=True)
        return jax.nn.sigmoid(logits), None if tempo is None else jax.nn.softmax(tempo)


class BeatEnsemble(eqx.Module):
    """Several [`BeatNet`][]s of one shape whose activations are averaged, as madmom
    averages the activations of its eight networks (Böck, Korzeniowski, Schlüter, Krebs &
    Widmer 2016): networks trained from different seeds or on different corpora err in
    different places, and the mean activation is steadier on music none of them heard.

    The members' weights are stacked along a leading axis and run in one vmapped program.
    """

    members: BeatNet
    n_members: int = eqx.field(static=True)

    def __init__(self, members: Sequence[BeatNet]):
        """**Arguments:** `members`, two or more [`BeatNet`][]s with the same
        hyperparameters and dtype (each keeps its own input normalisation).

        **Raises:** `ValueError` for fewer than two members or members of different
        shapes.
        """
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"A BeatEnsemble needs at least two networks, got {len(members)}; "
                             "use the BeatNet itself.")
        shapes = {(tuple(m.hyperparameters.values()), m.dtype) for m in members}
        if len(shapes) != 1:
            raise ValueError(f"The ensemble's networks differ in {HYPERPARAMETERS} or dtype: "
                             f"{sorted(map(str, shapes))}; every member must have one shape.")
        arrays = [eqx.filter(m, eqx.is_array) for m in members]
        static = eqx.filter(members[0], eqx.is_array, inverse=True)
        stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *arrays)
        self.members = eqx.combine(stacked, static)
        self.n_members = len(members)

    @property
    def hyperparameters(self) -> dict:
        """The members' shared [`HYPERPARAMETERS`][nrtjax.beats.network.HYPERPARAMETERS]."""
        return self.members.hyperparameters

    @property
    def dtype(self):
        return self.members.dtype

    @property
    def bands(self) -> int:
        return self.members.bands

    @property
    def causal(self) -> bool:
        return self.members.causal

    @property
    def receptive_field(self) -> int:
        return self.members.receptive_field

    def member(self, i: int) -> BeatNet:
        """The `i`-th network."""
        return jax.tree_util.tree_map(lambda a: a[i] if eqx.is_array(a) else a, self.members)

    @property
    def tempo_bins(self) -> int:
        return self.members.tempo_bins

    def activation(self, x: Float[Array, "bands time"], *, length=None) -> Float[Array, "2 time"]:
        """The members' mean activation."""
        act = eqx.filter_vmap(lambda m: m.activation(x, length=length))(self.members)
        return jnp.mean(act, axis=0)

    def outputs(self, x: Float[Array, "bands time"], *, length=None
                ) -> tuple[Float[Array, "2 time"], Float[Array, " tempo_bins"] | None]:
        """The members' mean activation and mean tempo probabilities."""
        act, tempo = eqx.filter_vmap(lambda m: m.outputs(x, length=length))(self.members)
        return jnp.mean(act, axis=0), None if tempo is None else jnp.mean(tempo, axis=0)
