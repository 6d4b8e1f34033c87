"""Procedural synthesis: drum voices (kick, snare, hat) and a melodic FM voice.

Everything here runs on the host in NumPy: the oscillator models decide *when* and *how
hard* (events), this module turns events into samples. Drum noise is random but
reproducible: it comes from a `key=` argument (a JAX PRNG key, a NumPy `Generator`, or
an int seed), so the same key gives the same audio bit for bit.

- `render_drums(events, duration, sr, *, key)`: events are `(time_s, instrument,
  velocity)` with `instrument` in `DRUMS` (`"kick"`, `"snare"`, `"hat"`) or its index.
- `render_notes(notes, duration, sr)`: notes are `(time_s, pitch, velocity, length_s)`
  with `pitch` a MIDI note number (69 = A4 = 440 Hz; fractional values allowed).

Each voice starts at the sample `round(time_s * sr)` with a 1 ms linear attack, so the
onset of a hit in the rendered audio is within a millisecond of its event time. Voices
are velocity-scaled: the amplitude is proportional to the velocity in $[0, 1]$ and the
drums also brighten with it. A hit that runs past `duration` is cut there.
"""

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from .._random import as_generator

DRUMS = ("kick", "snare", "hat")
"""The synthesised drum voices; an instrument is named by its name here or its index."""
_ATTACK_S = 0.001


class DrumEvent(NamedTuple):
    """One drum hit: onset time in seconds, instrument name (one of `DRUMS`), velocity in [0, 1]."""

    time_s: float
    instrument: str
    velocity: float


class Note(NamedTuple):
    """One note: onset in seconds, MIDI pitch (69 = 440 Hz), velocity in [0, 1], length in seconds
    (the key-down time; the release tail follows it)."""

    time_s: float
    pitch: float
    velocity: float
    length_s: float


def _check_sr(sr) -> int:
    if not isinstance(sr, (int, np.integer)) or sr < 8000:
        raise ValueError(f"sr must be an integer sampling rate >= 8000 Hz, got {sr!r}.")
    return int(sr)


def _check_velocity(v: float, what: str) -> float:
    v = float(v)
    if not (np.isfinite(v) and 0.0 <= v <= 1.0):
        raise ValueError(f"{what} velocity must lie in [0, 1], got {v!r}.")
    return v


def _attack(n: int, sr: int) -> np.ndarray:
    """A 1 ms linear fade-in (keeps the onset sharp without a click) and a 20 ms
    raised-cosine fade-out, so that cutting the voice at its end adds no click either."""
    k = np.arange(n)
    rise = np.minimum(1.0, (k + 1.0) / max(1.0, _ATTACK_S * sr))
    m = max(1, min(n // 4, int(0.02 * sr)))
    fall = np.ones(n)
    fall[n - m:] = 0.5 * (1 + np.cos(np.pi * (np.arange(m) + 1) / m))
    return rise * fall


def _bright(x: np.ndarray, order: int) -> np.ndarray:
    """White noise through `order` first differences: a high-pass with gain
    $|2\\sin(\\pi f/sr)|^{order}$ (+6 dB/octave each), cheap enough for streaming."""
    for _ in range(order):
        x = np.diff(x, prepend=0.0)
    return x


def kick(velocity: float, sr: int, *, key) -> np.ndarray:
    """A kick drum: a sine whose pitch falls exponentially from ~160 to 45 Hz (40 ms), with a
    150 ms decay, plus a 4 ms noise click. Length 0.45 s; amplitude proportional to `velocity`."""
    sr, v = _check_sr(sr), _check_velocity(velocity, "kick")
    rng = as_generator(key, what="Drum synthesis")
    t = np.arange(int(0.45 * sr)) / sr
    f_hi = 110.0 + 50.0 * v
    freq = 45.0 + (f_hi - 45.0) * np.exp(-t / 0.04)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    body = np.sin(phase) * np.exp(-t / 0.15)
    click = rng.standard_normal(t.size) * np.exp(-t / 0.004) * (0.08 + 0.12 * v)
    return v * 0.9 * (body + click) * _attack(t.size, sr)


def snare(velocity: float, sr: int, *, key) -> np.ndarray:
    """A snare drum: two damped partials (185 and 330 Hz, 70 ms) for the shell and
    differentiated (brightened) noise with a 120 ms decay for the wires. Length 0.3 s."""
    sr, v = _check_sr(sr), _check_velocity(velocity, "snare")
    rng = as_generator(key, what="Drum synthesis")
    t = np.arange(int(0.3 * sr)) / sr
    shell = np.sin(2 * np.pi * 185.0 * t) + 0.6 * np.sin(2 * np.pi * 330.0 * t)
    shell *= np.exp(-t / 0.07)
    wires = _bright(rng.standard_normal(t.size), 1) * np.exp(-t / 0.12)
    wires /= max(1e-12, np.max(np.abs(wires)))
    return v * 0.6 * (0.6 * shell + (0.7 + 0.3 * v) * wires) * _attack(t.size, sr)


def hat(velocity: float, sr: int, *, key) -> np.ndarray:
    """A closed hi-hat: twice-differentiated noise (+12 dB/octave, energy above ~5 kHz)
    with a 30 ms decay. Length 0.12 s."""
    sr, v = _check_sr(sr), _check_velocity(velocity, "hat")
    rng = as_generator(key, what="Drum synthesis")
    t = np.arange(int(0.12 * sr)) / sr
    noise = _bright(rng.standard_normal(t.size), 2)
    noise /= max(1e-12, np.max(np.abs(noise)))
    return v * 0.35 * noise * np.exp(-t / 0.03) * _attack(t.size, sr)


_VOICES = {"kick": kick, "snare": snare, "hat": hat}


def drum_voice(name):
    """The voice function (`kick`, `snare` or `hat`) for an instrument name or index 0-2."""
    return _VOICES[_instrument(name)]


def _instrument(name) -> str:
    if isinstance(name, (int, np.integer)) and 0 <= int(name) < len(DRUMS):
        return DRUMS[int(name)]
    name = str(name).strip().lower()
    if name not in _VOICES:
        raise ValueError(f"Unknown drum instrument {name!r}; use one of {DRUMS} (or 0, 1, 2).")
    return name


def _add_at(out: np.ndarray, start: int, voice: np.ndarray) -> None:
    end = min(out.shape[0], start + voice.shape[0])
    if end > start:
        out[start:end] += voice[: end - start]


def _num_samples(duration: float, sr: int) -> int:
    if not (np.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}.")
    return int(round(duration * sr))


def render_drums(
    events: Iterable[Sequence], duration: float, sr: int, *, key
) -> np.ndarray:
    """Render drum events into a mono track.

    **Arguments:**

    - `events`: `(time_s, instrument, velocity)` triples (e.g. `DrumEvent`s) with
        `instrument` one of `"kick"`, `"snare"`, `"hat"` (or 0, 1, 2) and velocity in
        $[0, 1]$. Events outside $[0, \\text{duration})$ are skipped.
    - `duration`: track length in seconds; `sr`: sampling rate in Hz (int).
    - `key`: a JAX PRNG key, an int seed or a NumPy `Generator` for the noise; each hit
        draws fresh noise from it, in event order.

    **Returns:** float64 array of shape `(round(duration * sr),)`; not normalised (use
    `nrtjax.audio.mix.normalize`).

    **Raises:** `ValueError` for an unknown instrument, a velocity outside $[0, 1]$, a
    non-finite time or a bad `duration`/`sr`.
    """
    sr = _check_sr(sr)
    out = np.zeros(_num_samples(duration, sr))
    rng = as_generator(key, what="Drum synthesis")
    for event in events:
        time_s, name, velocity = event
        time_s = float(time_s)
        if not np.isfinite(time_s):
            raise ValueError(f"Drum event time must be finite, got {time_s!r}.")
        voice = _VOICES[_instrument(name)]
        start = int(round(time_s * sr))
        if start < 0 or start >= out.shape[0]:
            continue
        _add_at(out, start, voice(velocity, sr, key=rng))
    return out


def adsr(length_s: float, sr: int, *, attack: float = 0.01, decay: float = 0.12,
         sustain: float = 0.55, release: float = 0.18) -> np.ndarray:
    """An ADSR envelope for a note held `length_s` seconds, followed by its release.

    Linear attack to 1 in `attack` s, exponential decay towards `sustain` (time constant
    `decay`/3), held until `length_s`, then an exponential release over `release` s. A
    note shorter than its attack releases from the level reached.

    **Returns:** array of `round((length_s + release) * sr)` samples, in [0, 1].
    """
    n_on = max(1, int(round(length_s * sr)))
    t = np.arange(n_on) / sr
    rise = np.minimum(1.0, (t + 1.0 / sr) / attack)
    after = np.maximum(0.0, t - attack)
    level = np.where(t < attack, rise, sustain + (1 - sustain) * np.exp(-3 * after / decay))
    t_rel = np.arange(int(round(release * sr))) / sr
    tail = level[-1] * np.exp(-5 * t_rel / release)
    return np.concatenate([level, tail])


def midi_to_hz(pitch):
    """Equal temperament: $440 \\cdot 2^{(p - 69)/12}$ Hz."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def fm_tone(freq: float, velocity: float, length_s: float, sr: int) -> np.ndarray:
    """A two-operator FM tone (modulator at 2x the carrier, Chowning 1973) with an ADSR.

    The modulation index follows the envelope and the velocity (1 + 2 v), so loud notes
    are brighter and every note darkens as it decays.

    **References:** Chowning, J. M. (1973). The synthesis of complex audio spectra by
    means of frequency modulation. J. Audio Eng. Soc. 21(7), 526-534.
    """
    sr, v = _check_sr(sr), _check_velocity(velocity, "note")
    if not (np.isfinite(freq) and 0 < freq < sr / 2):
        raise ValueError(f"Note frequency must lie in (0, {sr / 2}) Hz, got {freq!r}.")
    env = adsr(length_s, sr)
    t = np.arange(env.size) / sr
    index = (1.0 + 2.0 * v) * env
    carrier = np.sin(2 * np.pi * freq * t + index * np.sin(2 * np.pi * 2.0 * freq * t))
    return v * 0.5 * env * carrier


def render_notes(notes: Iterable[Sequence], duration: float, sr: int) -> np.ndarray:
    """Render melodic notes (FM voice, see `fm_tone`) into a mono track. Deterministic.

    **Arguments:**

    - `notes`: `(time_s, pitch, velocity, length_s)` tuples (e.g. `Note`s): MIDI pitch,
        velocity in $[0, 1]$, held length in seconds (> 0). Notes starting outside
        $[0, \\text{duration})$ are skipped; tails past the end are cut.
    - `duration`: track length in seconds; `sr`: sampling rate in Hz (int).

    **Returns:** float64 array of shape `(round(duration * sr),)`, not normalised.
    """
    sr = _check_sr(sr)
    out = np.zeros(_num_samples(duration, sr))
    for note in notes:
        time_s, pitch, velocity, length_s = (float(x) for x in note)
        if not (np.isfinite(time_s) and np.isfinite(length_s) and length_s > 0):
            raise ValueError(f"Note needs a finite time and a positive length, got {note!r}.")
        start = int(round(time_s * sr))
        if start < 0 or start >= out.shape[0]:
            continue
        _add_at(out, start, fm_tone(float(midi_to_hz(pitch)), velocity, length_s, sr))
    return out
