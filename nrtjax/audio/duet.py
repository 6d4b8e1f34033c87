"""The Neural Duet engine: an ASHLE drummer and a Lorenz melodist, streamed block by block.

**Model.** An external forcing $x(t)$ (optional: a click track, an EEG- or video-derived
rhythm, real or complex) drives a GrFNN listener layer; its pulse (the resonating
oscillators around the drummer's spontaneous rate, power- and Gaussian-weighted in log
frequency) is the stimulus of an ASHLE drummer (Roman et al. 2023) with
$f_0$ = `tempo_bpm / 60`. Without forcing the drummer plays at its spontaneous rate; with
forcing it entrains, learning the tempo with rate $\\lambda_1$ and pulled back to $f_0$
with elasticity $\\lambda_2$. The drummer's motor phase
$\\angle z$ is the beat clock: beats are its crossings of $2\\pi k$, eighth notes of
$\\pi k$. A Lorenz melodist runs on that clock ($d\\tau/dt$ = `lorenz_rate` $\\cdot f$); at each
eighth where the previous note has ended its state becomes a note (`nrtjax.audio.melody`).
Drums follow a 4/4 pattern on the eighths (kick 1 and 3, snare 2 and 4, hats on eighths,
velocities humanised from the seed); everything is synthesised with `nrtjax.audio.synth`.

**Streaming API.**

```python
engine = DuetEngine(sr=44100, seed=0)                 # fs_sim=200 Hz control rate
params = DuetParams(tempo_bpm=100.0, rho=28.0, scale="minor")
state = engine.init(params)
for _ in range(n_blocks):
    audio_block, state, info = engine.process_block(state, params, 0.25, forcing=None)
    params = params.replace(rho=20.0)                  # parameters may change between blocks
```

The simulation of a block is one jitted call (compiled once per block length, reused
whatever the parameter values): `nrtjax.simulate` of `nrtjax.models.DuetField` with
`input_hold="zero"`. Detection of beats and notes and the synthesis run on the host in
NumPy. All state is carried in `DuetState` (simulation state, the last eighth
played, the note gate and the audio tails of ringing notes), so streaming in blocks gives
the same audio as one long block (up to float rounding), and a state may be reused
(nothing is mutated). `audio_block` is the mix after a soft limiter, never above -1 dBFS.
A forcing block is `block_seconds * fs_sim` samples at `t0 + k / fs_sim` (held constant
over each step), or an `nrtjax.Signal` evaluated there.

**References:** Roman, I. R., Roman, A. S., Kim, J. C. & Large, E. W. (2023). PLOS Comput.
Biol. 19(6), e1011154. Large, E. W., Almonte, F. V. & Velasco, M. J. (2010). Physica D
239(12), 905-911. Lorenz, E. N. (1963). J. Atmos. Sci. 20, 130-141.
"""

import dataclasses
from typing import NamedTuple

import numpy as np

from .._dtypes import default_float
from .._signal import Signal
from . import synth
from ._duet_sim import SimState, advance, as_forcing, initial_sim_state, sim_params_from
from .melody import SCALES, MelodyMapping, lorenz_to_note
from .mix import db_to_gain, soft_limit

GRID = 2  # subdivisions per beat (eighth notes)


@dataclasses.dataclass(frozen=True)
class DuetParams:
    """The duet's parameters; any of them may change from one block to the next.

    **Fields:** `tempo_bpm` (the drummer's spontaneous tempo, 30-300), `lambda1` (tempo
    learning, >= 0), `lambda2` (elasticity, >= 0), `gamma` (sensory frequency pull, >= 0),
    `rho` (Lorenz $\\rho$ in (0, 100]: < 24.74 calm, ~28 chaotic), `lorenz_rate` (Lorenz time
    per beat, (0, 2]), `forcing_gain` (weight of the external forcing into the GrFNN, >= 0),
    `pulse_octaves` (width of the listener's pulse band, > 0), `scale` (a key of
    `melody.SCALES`), `root` (MIDI), `octave` (register shift, -3..3), `drum_gain_db`,
    `melody_gain_db` (stem levels in dB, <= 12).
    """

    tempo_bpm: float = 120.0
    lambda1: float = 4.0
    lambda2: float = 2.0
    gamma: float = 0.02
    rho: float = 28.0
    lorenz_rate: float = 0.25
    forcing_gain: float = 1.0
    pulse_octaves: float = 0.5
    scale: str = "minor_pentatonic"
    root: int = 57
    octave: int = 0
    drum_gain_db: float = -3.0
    melody_gain_db: float = -4.0

    def __post_init__(self):
        _check("tempo_bpm", self.tempo_bpm, 30.0, 300.0)
        for name in ("lambda1", "lambda2", "gamma", "forcing_gain"):
            _check(name, getattr(self, name), 0.0, 1e3)
        _check("rho", self.rho, 1e-6, 100.0)
        _check("lorenz_rate", self.lorenz_rate, 1e-6, 2.0)
        _check("pulse_octaves", self.pulse_octaves, 1e-3, 4.0)
        _check("octave", self.octave, -3, 3)
        _check("drum_gain_db", self.drum_gain_db, -120.0, 12.0)
        _check("melody_gain_db", self.melody_gain_db, -120.0, 12.0)
        if self.scale not in SCALES:
            raise ValueError(f"scale={self.scale!r} is unknown; choose one of {sorted(SCALES)}.")
        self.mapping.check()

    @property
    def mapping(self) -> MelodyMapping:
        return MelodyMapping(scale=self.scale, root=int(self.root), octave=int(self.octave))

    def sim_values(self) -> dict:
        return dict(f0=self.tempo_bpm / 60.0, lambda1=self.lambda1, lambda2=self.lambda2,
                    gamma=self.gamma, rho=self.rho, lorenz_rate=self.lorenz_rate,
                    forcing_gain=self.forcing_gain, pulse_octaves=self.pulse_octaves)

    def replace(self, **changes) -> "DuetParams":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


def _check(name, value, low, high):
    if not (np.isfinite(value) and low <= value <= high):
        raise ValueError(f"DuetParams.{name}={value!r} is out of range [{low}, {high}].")


class DuetState(NamedTuple):
    """Everything carried between blocks. `sim`: the simulated `SimState`; `step`: steps
    done; `last_eighth`: index of the last eighth played; `next_note`: first eighth at which
    the melodist may start a note; `tail_drums`, `tail_melody`: audio still ringing past the
    last block (samples from the next block's start)."""

    sim: SimState
    step: int
    last_eighth: int
    next_note: int
    tail_drums: np.ndarray
    tail_melody: np.ndarray


class BlockInfo(NamedTuple):
    """What happened in a block. Per step (`steps` = block_seconds x fs_sim): `ts` (times at
    the end of each step), `phase` (unwrapped motor phase, rad), `f` (motor frequency, Hz),
    `amp` ($|z|$), `lorenz` (`(steps, 3)`), `pulse_amp` (|GrFNN pulse|); `grfnn_amp` (`(n,)`
    at block end); events: `beats` (times, s), `drum_events` (`DrumEvent`s), `notes`
    (`Note`s); stems `drums`, `melody` (this block's samples, before the stem gains)."""

    ts: np.ndarray
    phase: np.ndarray
    f: np.ndarray
    amp: np.ndarray
    lorenz: np.ndarray
    pulse_amp: np.ndarray
    grfnn_amp: np.ndarray
    beats: np.ndarray
    drum_events: list
    notes: list
    drums: np.ndarray
    melody: np.ndarray

    @classmethod
    def join(cls, infos: list["BlockInfo"]) -> "BlockInfo":
        """Consecutive blocks as one: series and events concatenated, `grfnn_amp` of the
        last block."""
        def cat(name):
            return np.concatenate([getattr(i, name) for i in infos])
        def lists(name):
            return [e for i in infos for e in getattr(i, name)]
        return cls(cat("ts"), cat("phase"), cat("f"), cat("amp"), cat("lorenz"),
                   cat("pulse_amp"), infos[-1].grfnn_amp, cat("beats"), lists("drum_events"),
                   lists("notes"), cat("drums"), cat("melody"))


class DuetEngine:
    """The Neural Duet engine (see the module docstring for the model and an example).

    **Arguments:**

    - `sr`: audio sampling rate in Hz (int, default 44100).
    - `seed`: seed of the drums' noise and humanised velocities (int, default 0).
    - `fs_sim`: control (simulation) rate in Hz, RK4 step `1/fs_sim` (int, default 200).
    - `n_listeners`, `fmin`, `fmax`: the GrFNN listener's log-spaced oscillators
        (default 49, 12 per octave, from 0.5 to 8 Hz).
    - `dtype`: simulation dtype (default float64 under x64, else float32).
    """

    def __init__(self, *, sr: int = 44100, seed: int = 0, fs_sim: int = 200,
                 n_listeners: int = 49, fmin: float = 0.5, fmax: float = 8.0, dtype=None):
        if not isinstance(sr, (int, np.integer)) or sr < 8000:
            raise ValueError(f"sr must be an integer >= 8000 Hz, got {sr!r}.")
        if not isinstance(fs_sim, (int, np.integer)) or not 50 <= fs_sim <= 2000:
            raise ValueError(f"fs_sim must be an integer in [50, 2000] Hz, got {fs_sim!r}.")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
        if not (0 < fmin < fmax < fs_sim / 8) or n_listeners < 2:
            raise ValueError("Need 0 < fmin < fmax < fs_sim/8 and n_listeners >= 2.")
        self.sr, self.seed, self.fs_sim = int(sr), int(seed), int(fs_sim)
        self.dtype = np.dtype(dtype) if dtype is not None else default_float()
        self.freqs = np.geomspace(fmin, fmax, int(n_listeners))

    def init(self, params: DuetParams) -> DuetState:
        """The state before the first block (ASHLE's reference start at $f_0$)."""
        sim = initial_sim_state(params.tempo_bpm / 60.0, self.freqs.size, self.dtype)
        return DuetState(sim, 0, -1, 0, np.zeros(0), np.zeros(0))

    def block_steps(self, block_seconds: float) -> int:
        """Simulation steps in a block; raises unless `block_seconds * fs_sim` is whole."""
        n = int(round(block_seconds * self.fs_sim))
        if n < 1 or abs(n - block_seconds * self.fs_sim) > 1e-6:
            raise ValueError(f"block_seconds={block_seconds!r} must be a positive multiple of "
                             f"1/fs_sim = {1 / self.fs_sim:g} s.")
        return n

    def _sample(self, step: int) -> int:
        return (step * self.sr + self.fs_sim // 2) // self.fs_sim

    def process_block(self, state: DuetState, params: DuetParams, block_seconds: float,
                      forcing=None) -> tuple[np.ndarray, DuetState, BlockInfo]:
        """Advance the duet by one block and synthesise its audio.

        **Arguments:**

        - `state`: from `init` or the previous block (not modified).
        - `params`: this block's `DuetParams`.
        - `block_seconds`: block length, a multiple of `1/fs_sim`.
        - `forcing`: `None`, an array of `block_seconds * fs_sim` samples (real or complex,
            at `t0 + k/fs_sim`), or an `nrtjax.Signal` on absolute time.

        **Returns:** `(audio_block, new_state, info)`: the limited mix (float64, the samples
        of this block, about `block_seconds * sr`), the state for the next block and a
        `BlockInfo`.

        **Raises:** `ValueError` for a bad block length or forcing, or if the simulation
        diverges.
        """
        if not isinstance(params, DuetParams):
            raise TypeError(f"params must be a DuetParams, got {type(params).__name__}.")
        n = self.block_steps(block_seconds)
        t0 = state.step / self.fs_sim
        x = as_forcing(forcing, n, t0, self.fs_sim, self.dtype)
        p = sim_params_from(params.sim_values(), self.dtype)
        sim, trace = advance(state.sim, p, x, np.asarray(self.freqs, self.dtype), self.fs_sim)
        tr = _to_host(state.sim, trace)
        steps = state.step + np.arange(n + 1)
        ts = steps / self.fs_sim
        ev = _eighths(ts, tr["phase"], state.last_eighth)
        drum_events = _drum_events(ev, self.seed)
        notes, next_note = _notes(ev, ts, tr, state.next_note, params.mapping)
        s0, s1 = self._sample(state.step), self._sample(state.step + n)
        drums, tail_d = _render(drum_events, s0, s1, self.sr, state.tail_drums, self._drum)
        melody, tail_m = _render(notes, s0, s1, self.sr, state.tail_melody, self._note)
        mixed = drums * db_to_gain(params.drum_gain_db) + melody * db_to_gain(params.melody_gain_db)
        audio = soft_limit(mixed, peak_dbfs=-1.0)
        last = int(ev["index"][-1]) if ev["index"].size else state.last_eighth
        new_state = DuetState(sim, state.step + n, last, next_note, tail_d, tail_m)
        beats = ev["time"][ev["index"] % GRID == 0]
        info = BlockInfo(ts[1:], tr["phase"][1:], tr["f"][1:], tr["amp"][1:], tr["lorenz"][1:],
                         np.abs(np.asarray(trace.pulse)), np.asarray(trace.grfnn_amp), beats,
                         drum_events, notes, drums, melody)
        return audio, new_state, info

    def _drum(self, event) -> np.ndarray:
        k = synth.DRUMS.index(event.instrument)
        rng = np.random.default_rng([self.seed, 1, int(round(event.time_s * 1e6)), k])
        return synth.drum_voice(event.instrument)(event.velocity, self.sr, key=rng)

    def _note(self, note) -> np.ndarray:
        return synth.fm_tone(float(synth.midi_to_hz(note.pitch)), note.velocity, note.length_s,
                             self.sr)

    def run(self, params: DuetParams, duration: float, *, block_seconds: float | None = None,
            forcing=None) -> tuple[np.ndarray, DuetState, BlockInfo]:
        """Play `duration` seconds from `init(params)` in blocks (default: one block) and
        concatenate: returns `(audio, final_state, info)` with `info` fields joined over
        blocks (`grfnn_amp` from the last block). `forcing`: `None`, an `nrtjax.Signal`, or
        an array of `duration * fs_sim` samples."""
        total = self.block_steps(duration)
        per = total if block_seconds is None else self.block_steps(block_seconds)
        if total % per:
            raise ValueError(f"duration={duration} is not a whole number of blocks of "
                             f"{block_seconds} s.")
        state, outs, infos = self.init(params), [], []
        for b in range(total // per):
            xb = forcing
            if forcing is not None and not isinstance(forcing, Signal):
                xb = np.asarray(forcing)[b * per:(b + 1) * per]
            audio, state, info = self.process_block(state, params, per / self.fs_sim, xb)
            outs.append(audio)
            infos.append(info)
        return np.concatenate(outs), state, BlockInfo.join(infos)


def _to_host(start: SimState, trace) -> dict:
    """Per-step traces as NumPy, with the block's starting values prepended (index 0)."""
    ash = start.ashle
    return {
        "phase": np.concatenate([[float(start.phase)], np.asarray(trace.phase)]),
        "f": np.concatenate([[float(ash.f)], np.asarray(trace.f)]),
        "amp": np.concatenate([[abs(complex(ash.z))], np.asarray(trace.amp)]),
        "lorenz": np.concatenate([np.asarray(start.lorenz)[None], np.asarray(trace.lorenz)]),
    }


def _eighths(ts: np.ndarray, phase: np.ndarray, last: int) -> dict:
    """Crossings of the motor phase through multiples of $2\\pi/\\text{GRID}$ after eighth
    `last`, linearly interpolated: their index, time, step and fraction within the step."""
    g = np.floor(phase * GRID / (2 * np.pi)).astype(np.int64)
    k = np.flatnonzero((g[1:] > g[:-1]) & (g[1:] > last))
    idx = g[k + 1]
    target = idx * 2 * np.pi / GRID
    w = (target - phase[k]) / (phase[k + 1] - phase[k])
    return {"index": idx, "time": ts[k] + w * (ts[k + 1] - ts[k]), "step": k, "w": w}


def _drum_events(ev: dict, seed: int) -> list:
    """The 4/4 pattern on the eighths (8 per bar), velocities humanised by +-4 %."""
    out = []
    for i, t in zip(ev["index"].tolist(), ev["time"].tolist()):
        pos = i % 8
        hits = [("hat", 0.55 if pos % 2 == 0 else 0.35)]
        if pos in (0, 4) or (pos == 7 and (i // 8) % 2 == 1):
            hits.append(("kick", {0: 1.0, 4: 0.85, 7: 0.5}[pos]))
        if pos in (2, 6):
            hits.append(("snare", 0.9 if pos == 2 else 0.8))
        jitter = np.random.default_rng([seed, 0, i]).uniform(-0.04, 0.04, len(hits))
        out.extend(synth.DrumEvent(t, name, float(np.clip(v * (1 + j), 0.0, 1.0)))
                   for (name, v), j in zip(hits, jitter))
    return out


def _notes(ev: dict, ts: np.ndarray, tr: dict, next_note: int, mapping: MelodyMapping):
    """Notes at the eighths where the previous note has ended (monophonic melodist)."""
    notes = []
    for i, t, k, w in zip(ev["index"].tolist(), ev["time"].tolist(), ev["step"], ev["w"]):
        if i < next_note:
            continue
        xyz = tr["lorenz"][k] * (1 - w) + tr["lorenz"][k + 1] * w
        f = tr["f"][k] * (1 - w) + tr["f"][k + 1] * w
        pitch, vel, n_sub = (v.item() for v in lorenz_to_note(xyz, mapping))
        eighth_s = 1.0 / (GRID * max(f, 0.1))
        notes.append(synth.Note(t, float(pitch), float(vel), 0.9 * n_sub * eighth_s))
        next_note = i + n_sub
    return notes, next_note


def _render(events, s0: int, s1: int, sr: int, tail: np.ndarray, voice) -> tuple:
    """Samples [s0, s1) of the previous tail plus `events`, and the new tail past s1."""
    parts = [(ev_start, voice(ev)) for ev_start, ev in
             ((int(np.floor(e.time_s * sr + 0.5)), e) for e in events)]
    end = max([s1, s0 + tail.size] + [max(s0, a) + v.size for a, v in parts])
    buf = np.zeros(end - s0)
    buf[: tail.size] += tail
    for a, v in parts:
        a = max(a, s0) - s0
        buf[a:a + v.size] += v
    return buf[: s1 - s0], buf[s1 - s0:]
