"""AI drums and the mix preview, rendered block by block with guaranteed headroom.

Drum voices come from [`nrtjax.audio.synth`][] (one voice per event, its noise drawn
from a generator seeded by `(seed, event index)`, so a hit that spans a block boundary
is the same sound on both sides). The mix is

$$m = g\\,(w_a\\,a / P_a + w_d\\,d / P_d),\\quad w_a + w_d = 1,\\ g = 10^{-1/20},$$

with $P_a$, $P_d$ the peaks of the recording and of the drum track, so $|m| \\le g$:
the preview peaks at or below -1 dBFS whatever the input, and nothing is clipped.
"""

from collections.abc import Iterator

import numpy as np

from . import synth
from .groove_drums import INSTRUMENTS, DrumEvents
from .features import AudioInfo, iter_audio_blocks
from .mix import db_to_gain

_VOICES = {"kick": synth.kick, "snare": synth.snare, "hat": synth.hat}
_VOICE_S = 0.5  # longest voice (the kick is 0.45 s)


def _voice(events: DrumEvents, i: int, sr: int, seed: int) -> np.ndarray:
    name = INSTRUMENTS[int(events.instrument[i])]
    rng = np.random.default_rng((seed, i))
    return _VOICES[name](float(events.velocity[i]), sr, key=rng)


def render_drum_block(events: DrumEvents, start: int, length: int, sr: int, *,
                      seed: int = 0) -> np.ndarray:
    """Samples `[start, start + length)` of the drum track (float64, not normalised)."""
    out = np.zeros(length)
    t0, t1 = start / sr, (start + length) / sr
    sel = np.flatnonzero((events.times >= t0 - _VOICE_S) & (events.times < t1))
    for i in sel:
        v = _voice(events, int(i), sr, seed)
        s = int(round(events.times[i] * sr)) - start
        a, b = max(0, s), min(length, s + v.size)
        if b > a:
            out[a:b] += v[a - s: b - s]
    return out


def drum_peak(events: DrumEvents, info: AudioInfo, *, block_s: float = 30.0,
              seed: int = 0) -> float:
    """The drum track's peak, found block by block (the first of two passes)."""
    block = max(1, int(round(block_s * info.sr)))
    peak = 0.0
    for start in range(0, info.frames, block):
        d = render_drum_block(events, start, min(block, info.frames - start), info.sr, seed=seed)
        peak = max(peak, float(np.max(np.abs(d))) if d.size else 0.0)
    return peak


def groove_audio_blocks(
    events: DrumEvents, info: AudioInfo, audio_peak: float, *, block_s: float = 30.0,
    seed: int = 0, drums_weight: float = 0.45, peak_dbfs: float = -1.0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield `(drums, mix)` blocks (float32) covering the recording, both at or below
    `peak_dbfs` (see the module docstring for the mix law).

    **Arguments:**

    - `events`: the [`DrumEvents`][]; `info`: the file ([`audio_info`][]).
    - `audio_peak`: the recording's peak (from the envelope pass).
    - `block_s`: block length in seconds; `seed`: drum noise seed.
    - `drums_weight`: $w_d$ in [0, 1]; `peak_dbfs`: the guaranteed ceiling (<= 0).
    """
    if not 0.0 <= drums_weight <= 1.0:
        raise ValueError(f"drums_weight must lie in [0, 1], got {drums_weight!r}.")
    if not peak_dbfs <= 0.0:
        raise ValueError(f"peak_dbfs must be <= 0, got {peak_dbfs!r}.")
    ceiling = db_to_gain(peak_dbfs)
    pd = drum_peak(events, info, block_s=block_s, seed=seed)
    d_gain = ceiling / pd if pd > 0 else 0.0
    a_gain = ceiling / audio_peak if audio_peak > 0 else 0.0
    start = 0
    for audio in iter_audio_blocks(info, block_s=block_s):
        drums = render_drum_block(events, start, audio.size, info.sr, seed=seed) * d_gain
        mixed = (1 - drums_weight) * a_gain * audio.astype(np.float64) + drums_weight * drums
        start += audio.size
        yield (np.clip(drums, -ceiling, ceiling).astype(np.float32),
               np.clip(mixed, -ceiling, ceiling).astype(np.float32))
