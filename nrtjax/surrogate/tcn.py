"""The surrogate network: a plain causal TCN with attention ([`TCN`][nrtjax.surrogate.TCN]),
and ASHLE's physics references around it ([`Surrogate`][nrtjax.surrogate.Surrogate])."""

import math
from collections.abc import Sequence

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
        def prev(a):
            return jnp.concatenate([jnp.zeros_like(a[:, :1]), a[:, :-1]], axis=1)
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


def _ema(x: Float[Array, "channels time"], decay: float) -> Float[Array, "channels time"]:
    """Causal exponential moving average $y_t = d\\,y_{t-1} + (1-d)\\,x_t$, $y_{-1} = 0$,
    by an associative scan (parallel over time, so it also runs well on a GPU)."""
    a = jnp.full(x.shape, decay, x.dtype)

    def combine(left, right):
        return left[0] * right[0], right[0] * left[1] + right[1]

    return jax.lax.associative_scan(combine, (a, (1 - decay) * x), axis=-1)[1]


# |F| at and above which the forcing counts as fully present (the phase references and the
# tempo-invariant input ramp in below it).
PRESENCE = 0.1


def _increments(x: Float[Array, "2 time"]):
    """$p_t = F_t \\bar F_{t-1}$ as (real, imaginary) and $|F_t||F_{t-1}|$, with
    $F_{-1} = 0$."""
    def delayed(a):
        return jnp.concatenate([jnp.zeros_like(a[:1]), a[:-1]])

    re, im = x[0], x[1]
    re0, im0 = delayed(re), delayed(im)
    mag = jnp.hypot(re, im)
    return re * re0 + im * im0, im * re0 - re * im0, mag * delayed(mag)


def forcing_frequency(x: Float[Array, "2 time"], *, fs: float, tau: float,
                      prior: float) -> Float[Array, " time"]:
    """A causal estimate (Hz) of the instantaneous frequency of the forcing $F = x_0 + i x_1$.

    The forcing is a (faded-in) unit phasor whose angle advances at the tracked beat, so
    its frequency is the angle of the phase increment $p_t = F_t \\bar F_{t-1}$ times
    $f_s / 2\\pi$. With $P$ and $A$ the exponential moving averages (time constant `tau` s)
    of $p_t$ and of $|F_t||F_{t-1}|$, the estimate is
    $\\hat f = f_p + g\\,(\\arg P \\, f_s / 2\\pi - f_p)$ with the presence gate
    $g = \\min(A / 10^{-3}, 1)$: where the forcing is still 0 (before its fade-in) it is
    the `prior` $f_p$; once the forcing is present it is exactly its mean phase increment
    over the last `tau` seconds in Hz (a steady phasor at $f$ gives $f$). Only samples up to $t$ enter, and the
    averages weight each increment by $|F|^2$, so the faint start of the fade-in counts little.

    **Arguments:** `x`: real and imaginary part, shape `(2, time)`; `fs`: sampling rate (Hz);
    `tau`: smoothing time constant (s); `prior`: the value where there is no forcing (Hz).

    **Returns:** shape `(time,)`, in Hz.
    """
    p_re, p_im, a = _ema(jnp.stack(_increments(x)), math.exp(-1.0 / (tau * fs)))
    f_est = jnp.arctan2(p_im, p_re) * (fs / (2 * math.pi))
    gate = jnp.clip(a * 1e3, 0.0, 1.0)
    return prior + gate * (f_est - prior)


def locked_frequency(f_forcing: Float[Array, "*shape"], *, f0: float,
                     elasticity: float) -> Float[Array, "*shape"]:
    """ASHLE's learned motor frequency $f$ when locked to a forcing of frequency $f_F$
    (Hz), from its steady state (Roman et al. 2023 equations, $a = 1$, $b = -1$, unit
    drive $u_d$ of the motor oscillator $z$).

    At lock, with $\\psi$ the phase of $u_d$ ahead of $z$ and $r = |z|$:
    $\\dot f = 0$ gives $\\lambda_1 \\sin\\psi = \\lambda_2 (e^{(f - f_0)/f_0} - 1)$;
    $\\dot r = 0$ gives $r - r^3 + \\cos\\psi = 0$; and $z$ turns at the forcing's rate,
    $f (2\\pi + \\sin\\psi / r) = 2\\pi f_F$. This map $f \\mapsto f_F$ is increasing
    up to $\\sin\\psi = 1$; it is tabulated on 1024 points and inverted by linear
    interpolation (clamped at both ends).

    **Arguments:** `f_forcing`: $f_F$ in Hz; `f0`: ASHLE's $f_0$ (Hz); `elasticity`:
    $\\lambda_2 / \\lambda_1$.

    **Returns:** $f$ in Hz, same shape and dtype.
    """
    f = jnp.linspace(0.02 * f0, f0 * (1 + math.log1p(1 / elasticity)), 1024,
                     dtype=jnp.result_type(f_forcing, 0.0))
    sin = elasticity * jnp.expm1((f - f0) / f0)
    cos = jnp.sqrt(jnp.clip(1 - sin**2, 0.0, 1.0))
    r = jnp.full_like(f, 1.5)  # Newton on r^3 - r - cos = 0 from above: converges to the largest root
    for _ in range(12):
        r = r - (r**3 - r - cos) / (3 * r**2 - 1)
    return jnp.interp(f_forcing, f * (1 + sin / (2 * math.pi * r)), f)


def forcing_phasor(x: Float[Array, "2 time"]) -> Float[Array, "2 time"]:
    """$F / \\max(|F|, 0.1)$ for the forcing $F = x_0 + i x_1$: its unit phasor where it
    is present, of magnitude $\\min(|F| / 0.1, 1)$ (0 before it starts)."""
    return x / jnp.maximum(jnp.hypot(x[0], x[1]), PRESENCE)[None]


def locked_lag(f: Float[Array, "*shape"], *, f0: float, elasticity: float
               ) -> tuple[Float[Array, "*shape"], Float[Array, "*shape"]]:
    """$(\\cos\\psi, \\sin\\psi)$ of ASHLE's steady phase lag $\\psi$ of the motor oscillator
    behind its drive at lock, for a locked motor frequency $f$ (Hz): from $\\dot f = 0$,
    $\\sin\\psi = (\\lambda_2/\\lambda_1)(e^{(f - f_0)/f_0} - 1)$ (clipped to $[-1, 1]$), the
    same relation [`locked_frequency`][] inverts. The sensory oscillator's own lag behind
    the forcing is neglected ($\\gamma \\ll \\lambda_1 F_d$)."""
    sin = jnp.clip(elasticity * jnp.expm1((f - f0) / f0), -1.0, 1.0)
    return jnp.sqrt(1 - sin**2), sin


class TCN(eqx.Module):
    """A plain causal network: a 1x1 input projection, residual TCN blocks (dilation
    $2^i$), causal attention, and a 1x1 head of 4 channels per step. The defaults are the
    shipped surrogate's network (3 inputs, hidden 32, 6 blocks, kernel 5, no dropout,
    2 heads, window 128); [`Surrogate`][nrtjax.surrogate.Surrogate] wraps it with ASHLE's
    physics references. The seed architecture is `hidden=128, heads=4, dropout=0.15`.
    """

    proj: eqx.nn.Conv1d
    blocks: tuple[TCNBlock, ...]
    attention: CausalAttention | None
    head: eqx.nn.Conv1d

    def __init__(self, in_channels: int = 3, hidden: int = 32, n_blocks: int = 6,
                 kernel: int = 5, dropout: float = 0.0, heads: int = 2, window: int = 128,
                 *, dtype=None, key: PRNGKeyArray):
        """**Arguments:**

        - `in_channels`: input channels (3: [`Surrogate`][nrtjax.surrogate.Surrogate]'s
            tempo-invariant channels).
        - `hidden`, `n_blocks`, `kernel`, `dropout`: TCN width, depth, kernel size, dropout.
        - `heads`: attention heads (0 for no attention); `window`: attention span in steps.
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

    @property
    def receptive_field(self) -> int:
        """Steps of input history the convolutions see (attention adds `window`)."""
        return 1 + sum(2 * (b.conv1.kernel_size[0] - 1) * b.conv1.dilation[0] for b in self.blocks)

    def __call__(self, x: Float[Array, "channels time"], *, key: PRNGKeyArray | None = None,
                 inference: bool = True) -> Float[Array, "4 time"]:
        """Outputs `(4, time)`. Dropout is active only with `inference=False` (then `key`
        is required)."""
        if not inference and key is None:
            raise ValueError("TCN needs a key when inference=False (dropout).")
        keys = [None] * len(self.blocks) if key is None else list(jr.split(key, len(self.blocks)))
        h = self.proj(x)
        for block, k in zip(self.blocks, keys):
            h = block(h, key=k, inference=inference)
        if self.attention is not None:
            h = self.attention(h)
        return self.head(h)


class Surrogate(eqx.Module):
    """The surrogate of ASHLE: a plain [`TCN`][nrtjax.surrogate.TCN] between ASHLE's
    physics references, computed from the forcing alone, causally. Output per step:
    $(\\cos\\phi, \\sin\\phi, \\hat f, \\hat r)$ with the motor frequency
    `freq_center + freq_scale * f_hat` (Hz) and amplitude `1 + r_hat`.

    - **Tempo-invariant input.** The network does not see the rotating forcing
      $F = x_0 + i x_1$ but three channels: the presence $\\min(|F|/0.1, 1)$, the deviation
      of the forcing's instantaneous frequency from its causal estimate $f_F$
      ([`forcing_frequency`][], time constant `freq_tau`) times the presence, and ASHLE's
      locked frequency at $f_F$ clipped to `tempo_clip` (BPM, the training tempi), the
      last two in units of `freq_scale`. Beyond the training tempi its input looks like
      that at the nearest trained tempo, while the references below carry the tempo.
    - **Frequency residual.** With $f_r$ ASHLE's locked motor frequency at $f_F$
      ([`locked_frequency`][], $f_0$ = `lock_f0`, $\\lambda_2/\\lambda_1$ =
      `lock_elasticity`), `f_hat = (f_r - freq_center) / freq_scale + head`: the network
      learns only the transient offset from steady lock.
    - **Phase residual.** With the reference phasor $u = F e^{-i\\psi} / \\max(|F|, 0.1)$
      (the forcing's phase minus ASHLE's steady lag at lock, [`locked_lag`][] of $f_r$;
      magnitude $\\min(|F| / 0.1, 1)$) and $w = c + i s$ from the head, the output phasor
      is $u(1 + w) + (1 - |u|) w$: absolute where there is no forcing yet, a correction
      of the locked phase once there is, so $w = 0$ is exact lock.

    The defaults are the shipped configuration.
    """

    net: TCN
    fs: float = eqx.field(static=True)
    freq_center: float = eqx.field(static=True)
    freq_scale: float = eqx.field(static=True)
    freq_tau: float = eqx.field(static=True)
    lock_f0: float = eqx.field(static=True)
    lock_elasticity: float = eqx.field(static=True)
    tempo_clip: tuple[float, float] = eqx.field(static=True)

    def __init__(self, net: TCN, *, fs: float = 256.0, freq_center: float = 2.0,
                 freq_scale: float = 0.5, freq_tau: float = 1.0, lock_f0: float = 1.8,
                 lock_elasticity: float = 1.0,
                 tempo_clip: Sequence[float] = (75.0, 170.0)):
        """**Arguments:**

        - `net`: the network, with 3 input channels (e.g. `TCN(key=key)`).
        - `fs`: the forcing's sampling rate (Hz).
        - `freq_center`, `freq_scale`: the affine map of the frequency output (Hz).
        - `freq_tau`: time constant (s) of the forcing-frequency estimate.
        - `lock_f0`, `lock_elasticity`: ASHLE's $f_0$ (Hz) and $\\lambda_2/\\lambda_1$ for
            the locked frequency and lag.
        - `tempo_clip`: `(lo, hi)` BPM, the tempi the network's input is clipped to.
        """
        tempo_clip = tuple(float(v) for v in tempo_clip)
        if net.proj.in_channels != 3:
            raise ValueError(f"The Surrogate's network takes its 3 tempo-invariant channels; "
                             f"got in_channels={net.proj.in_channels}: build it as TCN(3, ...).")
        if not (freq_tau > 0 and fs > 0 and lock_f0 > 0 and lock_elasticity > 0
                and freq_scale > 0):
            raise ValueError(f"freq_tau={freq_tau}, fs={fs}, lock_f0={lock_f0}, "
                             f"lock_elasticity={lock_elasticity} and freq_scale={freq_scale} "
                             "must be positive.")
        if not (len(tempo_clip) == 2 and 0 < tempo_clip[0] < tempo_clip[1]):
            raise ValueError(f"tempo_clip={tempo_clip} must be (lo, hi) BPM with 0 < lo < hi.")
        self.net = net
        self.fs, self.freq_center, self.freq_scale = float(fs), freq_center, freq_scale
        self.freq_tau, self.lock_f0, self.lock_elasticity = freq_tau, lock_f0, lock_elasticity
        self.tempo_clip = tempo_clip

    @property
    def head(self) -> eqx.nn.Conv1d:
        """The network's output layer (its weight's dtype is the model's)."""
        return self.net.head

    def forcing_estimate(self, x: Float[Array, "2 time"]) -> Float[Array, " time"]:
        """$f_F$: [`forcing_frequency`][] of the forcing with this model's settings (Hz)."""
        return forcing_frequency(x[:2], fs=self.fs, tau=self.freq_tau, prior=self.lock_f0)

    def frequency_reference(self, x: Float[Array, "2 time"]) -> Float[Array, " time"]:
        """$f_r$: ASHLE's locked motor frequency at $f_F$ (Hz), causal."""
        return self._lock_map(self.forcing_estimate(x))

    def _lock_map(self, f_forcing):
        return locked_frequency(f_forcing, f0=self.lock_f0, elasticity=self.lock_elasticity)

    def invariant_channels(self, x: Float[Array, "2 time"],
                           f_F: Float[Array, " time"] | None = None) -> Float[Array, "3 time"]:
        """The network's input (class docstring): presence, frequency deviation and
        clipped locked frequency, causal. `f_F`: [`forcing_estimate`][nrtjax.surrogate.Surrogate.forcing_estimate]
        if already computed."""
        presence = jnp.minimum(jnp.hypot(x[0], x[1]) / PRESENCE, 1.0)
        p_re, p_im, _ = _increments(x[:2])
        inst = jnp.arctan2(p_im, p_re) * (self.fs / (2 * math.pi))
        if f_F is None:
            f_F = self.forcing_estimate(x)
        lo, hi = self.tempo_clip
        ref = self._lock_map(jnp.clip(f_F, lo / 60.0, hi / 60.0))
        return jnp.stack([presence, presence * (inst - f_F) / self.freq_scale,
                          (ref - self.freq_center) / self.freq_scale]).astype(x.dtype)

    def __call__(self, x: Float[Array, "2 time"], *, key: PRNGKeyArray | None = None,
                 inference: bool = True) -> Float[Array, "4 time"]:
        """Raw outputs `(cos, sin, f_hat, r_hat)`, shape `(4, time)`, from the forcing's
        real and imaginary part `x`. Dropout is active only with `inference=False` (then
        `key` is required)."""
        f_F = self.forcing_estimate(x)
        f_r = self._lock_map(f_F)
        out = self.net(self.invariant_channels(x, f_F), key=key, inference=inference)
        f_in = ((f_r - self.freq_center) / self.freq_scale).astype(x.dtype)
        out = out.at[2].add(f_in.astype(out.dtype))
        return out.at[:2].set(self._relative_to_lock(out[:2], x[:2], f_r))

    def _relative_to_lock(self, w: Float[Array, "2 time"], forcing: Float[Array, "2 time"],
                          f_r: Float[Array, " time"]) -> Float[Array, "2 time"]:
        """$u(1 + w) + (1 - |u|) w$ with the reference phasor $u$ (class docstring)."""
        re, im = forcing_phasor(forcing.astype(w.dtype))
        cos, sin = locked_lag(f_r, f0=self.lock_f0, elasticity=self.lock_elasticity)
        cos, sin = cos.astype(w.dtype), sin.astype(w.dtype)
        re, im = re * cos + im * sin, im * cos - re * sin  # times e^{-i psi}
        c, s = 1 + w[0], w[1]
        keep = 1 - jnp.hypot(re, im)
        return jnp.stack([re * c - im * s + keep * w[0], re * s + im * c + keep * w[1]])
