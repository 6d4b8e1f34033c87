"""The baseline decoder: a bar-pointer hidden Markov model decoded by Viterbi.

The state space of Krebs, Boeck & Widmer (2015). A state is `(beat b, tempo j, position
p)`: the bar has `m` beats (`b = 0..m-1`, `b = 0` the downbeat), the beat interval is
$\\omega_j$ frames (a grid of integer intervals between the slowest and fastest tempo) and
the position within the beat advances one frame per frame, $p = 0..\\omega_j - 1$. Within
a beat the transition is deterministic ($p \\to p + 1$, tempo kept); at the end of a beat
($p = \\omega_i - 1$) the pointer moves to the next beat's first position, $(b + 1 \\bmod m,
j, 0)$, and only there may the tempo change, with

$$P(\\omega_j \\mid \\omega_i) \\propto
\\exp\\left(-\\lambda \\left|\\frac{\\omega_j}{\\omega_i} - 1\\right|\\right).$$

Observation model (their equation 5, with the downbeat class of the joint beat and
downbeat model): the first $\\omega_j / \\lambda_o$ positions of a beat are its beat
region. With beat activation $a_t$ and downbeat activation $d_t$,
$P(\\text{obs} \\mid \\text{downbeat region}) = d_t$,
$P(\\text{obs} \\mid \\text{other beat region}) = a_t$ (or $\\max(a_t - d_t, \\epsilon)$ when
the downbeat activation is used) and $P(\\text{obs} \\mid \\text{no beat}) = (1 - a_t) /
(\\lambda_o - 1)$.
Here $a_t$ and $d_t$ are the activations' maxima over $t \\pm 1$ frame (`tolerance`): the
network was trained with targets that mark a beat's frame and both neighbours, so its
peak locates a beat to within a frame, and its narrow peaks (1-3 frames) would otherwise
leave the later frames of a long beat region (7 frames at 55 BPM) near zero, a cost that
grows with the beat interval and pushed the path to twice the tempo.

Viterbi runs in the log domain, vectorised over states. Only the beat-entry states have
more than one predecessor, so only their back-pointers are stored: memory is
`frames x m x tempi`, not `frames x states`.

**References:**

Krebs, F., Boeck, S. & Widmer, G. (2015). An efficient state-space model for joint tempo
and meter tracking. Proc. ISMIR, 72-78.

Whiteley, N., Cemgil, A. T. & Godsill, S. (2006). Bayesian modelling of temporal structure
in musical audio. Proc. ISMIR (the bar pointer).
"""

import dataclasses

import numpy as np

from ._types import BeatActivation, BeatTrack

_TINY = 1e-12


@dataclasses.dataclass(frozen=True)
class HMMSettings:
    """Settings of the bar-pointer HMM (defaults: those of Krebs et al. 2015 where they
    give one).

    - `min_bpm`, `max_bpm`: the tempo range.
    - `num_tempi`: at most this many beat intervals, log-spaced and rounded to whole
        frames (fewer where rounding merges them).
    - `transition_lambda`: $\\lambda$ of the tempo transition (larger: steadier tempo).
    - `transition_threshold`: tempo transitions less probable than this times the most
        probable one from the same tempo are removed (sparse transitions; 0 keeps all).
    - `observation_lambda`: $\\lambda_o$; the beat region is the first $1/\\lambda_o$ of
        a beat.
    - `beats_per_bar`: the meters tried; the one whose best path is most probable wins.
        `(1,)` tracks beats only.
    - `use_downbeat`: observe the downbeat activation at downbeat states (off: every
        beat region observes the beat activation, and downbeats are not reported).
    - `correct`: move each beat to the activation's maximum within its beat region.
    - `threshold`: decode only from the first to the last frame whose beat activation
        exceeds this (0: the whole activation); no beats are reported outside.
    - `tempo_weight`: $w_T$: where the activation carries the network's tempo head
        $p_T$, every beat at interval $\\omega_j$ is weighted by $p_T(\\omega_j)^{w_T}$
        (added to the tempo transition into $j$; 0, the default: the head is not used,
        as the shipped network's validation chose for this decoder).
    - `tolerance`: the observations are the activations' maxima over this many frames
        either side (the network's training targets mark a beat's frame and its
        neighbours: an activation peak places the beat only to within a frame).
    """

    min_bpm: float = 55.0
    max_bpm: float = 215.0
    num_tempi: int = 60
    transition_lambda: float = 100.0
    transition_threshold: float = 1e-6
    observation_lambda: float = 16.0
    beats_per_bar: tuple[int, ...] = (2, 3, 4)
    use_downbeat: bool = True
    correct: bool = True
    threshold: float = 0.05
    tolerance: int = 1
    tempo_weight: float = 0.0

    def __post_init__(self):
        if not (0 < self.min_bpm < self.max_bpm):
            raise ValueError(f"Need 0 < min_bpm < max_bpm, got {self.min_bpm}, {self.max_bpm}.")
        if (self.num_tempi < 1 or self.transition_lambda <= 0 or self.observation_lambda <= 1
                or not 0 <= self.transition_threshold < 1):
            raise ValueError("Need num_tempi >= 1, transition_lambda > 0, "
                             "0 <= transition_threshold < 1 and observation_lambda > 1.")
        if self.tempo_weight < 0:
            raise ValueError(f"tempo_weight must be >= 0, got {self.tempo_weight}.")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0 frames, got {self.tolerance}.")
        if not self.beats_per_bar or any(int(m) < 1 for m in self.beats_per_bar):
            raise ValueError(f"beats_per_bar must list meters >= 1, got {self.beats_per_bar}.")


def beat_intervals(fps: float, settings: HMMSettings) -> np.ndarray:
    """The beat intervals in frames: log-spaced from `fps * 60 / max_bpm` to
    `fps * 60 / min_bpm`, rounded, unique, increasing."""
    lo = max(1, int(np.floor(fps * 60.0 / settings.max_bpm)))
    hi = int(np.ceil(fps * 60.0 / settings.min_bpm))
    n = min(settings.num_tempi, hi - lo + 1)
    return np.unique(np.round(np.geomspace(lo, hi, n)).astype(int))


def tempo_transitions(intervals: np.ndarray, lam: float, threshold: float = 0.0) -> np.ndarray:
    """Log of $P(\\omega_j \\mid \\omega_i)$, shape `(tempi, tempi)`; rows sum to 1 in
    probability. Transitions below `threshold` times their row's largest are removed (log
    probability $-\\infty$) before normalising: the sparse transition model."""
    ratio = intervals[None, :] / intervals[:, None]
    logp = -lam * np.abs(ratio - 1.0)
    if threshold > 0:
        logp = np.where(logp - logp.max(axis=1, keepdims=True) >= np.log(threshold), logp,
                        -np.inf)
    return logp - np.logaddexp.reduce(logp, axis=1, keepdims=True)


def _sources(log_trans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target tempo `j`, the source tempi with a finite transition into it,
    padded: `(src, logw)` of shape `(tempi, k)`, padding with weight $-\\infty$."""
    finite = np.isfinite(log_trans)
    k = int(finite.sum(axis=0).max())
    src = np.zeros((log_trans.shape[0], k), int)
    logw = np.full((log_trans.shape[0], k), -np.inf)
    for j in range(log_trans.shape[0]):
        i = np.flatnonzero(finite[:, j])
        src[j, :i.size], logw[j, :i.size] = i, log_trans[i, j]
    return src, logw


class BarPointer:
    """The state space of one meter: states laid out as blocks `(beat, tempo)` of
    `intervals[j]` positions each."""

    def __init__(self, intervals: np.ndarray, beats: int, observation_lambda: float):
        self.intervals = np.asarray(intervals, int)
        self.beats = int(beats)
        per_beat = self.intervals.sum()
        self.size = self.beats * per_beat
        starts = np.concatenate([[0], np.cumsum(self.intervals)[:-1]])
        # entry[b, j]: first state of block (b, j); last[b, j]: its last state.
        self.entry = starts[None, :] + per_beat * np.arange(self.beats)[:, None]
        self.last = self.entry + self.intervals[None, :] - 1
        pos = np.concatenate([np.arange(w) for w in self.intervals])
        self.position = np.tile(pos, self.beats)
        self.tempo = np.tile(np.repeat(np.arange(self.intervals.size), self.intervals), self.beats)
        self.beat = np.repeat(np.arange(self.beats), per_beat)
        region = self.position < self.intervals[self.tempo] / observation_lambda
        # Observation class: 0 no beat, 1 beat, 2 downbeat.
        downbeat = (self.beat == 0) & (self.beats > 1)
        self.klass = np.where(region, np.where(downbeat, 2, 1), 0)


def log_observations(beat: np.ndarray, downbeat: np.ndarray, observation_lambda: float,
                     use_downbeat: bool) -> np.ndarray:
    """Log observation probabilities per frame and class, shape `(frames, 3)`:
    no beat, beat, downbeat."""
    a = np.clip(beat, _TINY, 1 - _TINY)
    if use_downbeat:
        d = np.clip(downbeat, _TINY, 1.0)
        other = np.maximum(a - d, _TINY)
    else:
        d = other = a
    none = (1 - a) / (observation_lambda - 1)
    return np.log(np.stack([none, other, d], axis=1))


def viterbi(space: BarPointer, log_trans: np.ndarray, log_obs: np.ndarray
            ) -> tuple[np.ndarray, float]:
    """The most probable state path under a uniform initial distribution.

    **Arguments:** `space`: a [`BarPointer`][]; `log_trans`: `(tempi, tempi)` log tempo
    transitions; `log_obs`: `(frames, 3)` log observation probabilities per class.

    **Returns:** `(path, log_prob)`: the state index per frame and the path's log
    probability.
    """
    frames = log_obs.shape[0]
    m = space.beats
    delta = np.full(space.size, -np.log(space.size)) + log_obs[0][space.klass]
    back = np.empty((frames, m, space.intervals.size), np.int32)
    prev_beat = (np.arange(m) - 1) % m
    src, logw = _sources(log_trans)
    last_src = space.last[prev_beat][:, src]  # (m, tempi, k): the states entering (b, j)
    rows = np.arange(m)[:, None]
    cols = np.arange(space.intervals.size)[None, :]
    new = np.empty_like(delta)
    for t in range(1, frames):
        # Entry of (b, j) from the last position of (b - 1, i) at a tempo i near j.
        cand = delta[last_src] + logw[None]
        best = np.argmax(cand, axis=2)
        back[t] = src[cols, best]
        entry_score = cand[rows, cols, best]
        new[1:] = delta[:-1]
        new[space.entry] = entry_score
        delta, new = new + np.take(log_obs[t], space.klass), delta
    path = np.empty(frames, np.int64)
    s = int(np.argmax(delta))
    score = float(delta[s])
    for t in range(frames - 1, -1, -1):
        path[t] = s
        if t == 0:
            break
        p = space.position[s]
        if p > 0:
            s -= 1
        else:
            b, j = space.beat[s], space.tempo[s]
            s = int(space.last[prev_beat[b], back[t, b, j]])
    return path, score


def decode_hmm(act: BeatActivation, *, settings: HMMSettings = HMMSettings()) -> BeatTrack:
    """Beats and downbeats from an activation by the bar-pointer HMM (Viterbi).

    **Arguments:**

    - `act`: a [`nrtjax.beats.BeatActivation`][].
    - `settings`: an [`HMMSettings`][].

    **Returns:** a [`nrtjax.beats.BeatTrack`][] with `decoder="hmm"`; `tempo_bpm` is 60
    over the median beat interval.

    **Raises:** `ValueError` for an empty, non-finite or out-of-range activation.
    """
    beat, down, fps = check_activation(act)
    intervals = beat_intervals(fps, settings)
    log_trans = tempo_transitions(intervals, settings.transition_lambda,
                                  settings.transition_threshold)
    if act.tempo is not None and settings.tempo_weight > 0:
        from .network import tempo_log_prior

        log_trans = log_trans + settings.tempo_weight * tempo_log_prior(
            act.tempo, 60.0 * fps / intervals)[None, :]
    use_down = settings.use_downbeat and float(down.max()) > 0
    above = np.flatnonzero(beat > settings.threshold)
    if above.size < 2:
        return BeatTrack(np.zeros(0), np.zeros(0), float("nan"), "hmm")
    first, end = int(above[0]), int(above[-1]) + 1
    beat, down = beat[first:end], down[first:end]
    log_obs = log_observations(widen(beat, settings.tolerance), widen(down, settings.tolerance),
                               settings.observation_lambda, use_down)
    best = None
    for m in settings.beats_per_bar:
        space = BarPointer(intervals, int(m), settings.observation_lambda)
        path, score = viterbi(space, log_trans, log_obs)
        if best is None or score > best[0]:
            best = (score, space, path)
    _, space, path = best
    frames = _beat_frames(space, path, beat if settings.correct else None)
    downs = frames[space.beat[path[frames]] == 0] if (use_down and space.beats > 1) else frames[:0]
    beats_s, downs_s = (frames + first) / fps, (downs + first) / fps
    tempo = 60.0 / float(np.median(np.diff(beats_s))) if beats_s.size > 1 else float("nan")
    return BeatTrack(beats_s, downs_s, tempo, "hmm")


def widen(x: np.ndarray, frames: int) -> np.ndarray:
    """The running maximum of `x` over `frames` frames either side."""
    if frames <= 0:
        return x
    pad = np.pad(x, frames, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * frames + 1)
    return win.max(axis=1)


def _beat_frames(space: BarPointer, path: np.ndarray, act: np.ndarray | None) -> np.ndarray:
    """The frame of each beat: where the path enters a beat (position 0), or with `act`,
    the activation's maximum over the path's stay in that beat region."""
    entries = np.flatnonzero(space.position[path] == 0)
    if act is None:
        return entries
    region = space.klass[path] > 0
    out = []
    for e in entries:
        end = e
        while end + 1 < path.size and region[end + 1] and space.position[path[end + 1]] > 0:
            end += 1
        out.append(e + int(np.argmax(act[e:end + 1])))
    return np.asarray(out, int)


def check_activation(act: BeatActivation) -> tuple[np.ndarray, np.ndarray, float]:
    """The activation as float64 arrays, checked: same length, finite, in [0, 1]; the
    tempo probabilities, if any, a finite non-negative vector of at least 2 bins."""
    beat = np.asarray(act.beat, np.float64).reshape(-1)
    down = np.asarray(act.downbeat, np.float64).reshape(-1)
    fps = float(act.fps)
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"BeatActivation.fps must be a positive frame rate, got {act.fps!r}.")
    if beat.size < 2 or beat.shape != down.shape:
        raise ValueError(f"BeatActivation needs beat and downbeat of the same length >= 2, got "
                         f"{beat.size} and {down.size} frames.")
    for name, x in (("beat", beat), ("downbeat", down)):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"BeatActivation.{name} contains NaN or inf; the network output "
                             "is broken (check the input audio and the checkpoint).")
        if x.min() < 0 or x.max() > 1:
            raise ValueError(f"BeatActivation.{name} must be a probability in [0, 1], got values "
                             f"in [{x.min():.3g}, {x.max():.3g}] (apply the sigmoid first).")
    if act.tempo is not None:
        t = np.asarray(act.tempo, np.float64)
        if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)) or t.min() < 0:
            raise ValueError(f"BeatActivation.tempo must be the tempo head's probabilities, a "
                             f"finite non-negative vector of >= 2 bins, got shape {t.shape}; "
                             "pass tempo=None for an activation without one.")
    return beat, down, fps
