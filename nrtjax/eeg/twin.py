"""A digital twin of the Emotiv Epoc X: 14-channel EEG at 128 Hz in five cognitive states."""

import dataclasses
from collections.abc import Sequence

import jax.random as jr
import numpy as np
from jaxtyping import PRNGKeyArray

from .._random import as_generator
from .io import EEGRecording

EPOC_CHANNELS = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4",
                 "F8", "AF4")
"""The Emotiv Epoc X's 14 channels (10-20 names), in the twin's channel order."""
EPOC_FS = 128.0
STATES = ("stressed", "focused", "relaxed_awake", "meditative", "drowsy")
"""The cognitive states the twin simulates (the baseline, `"neutral"`, is separate)."""
BASELINE = "neutral"

# Source topographies (weights on the 14 Epoc channels, in EPOC_CHANNELS order).
_TOPO = {
    #         AF3  F7   F3   FC5  T7   P7   O1   O2   P8   T8   FC6  F4   F8   AF4
    "alpha": [.20, .30, .25, .30, .50, .90, 1.0, 1.0, .90, .50, .30, .25, .30, .20],
    "theta": [.80, .60, 1.0, .80, .40, .30, .20, .20, .30, .40, .80, 1.0, .60, .80],
    "beta":  [.80, .80, 1.0, 1.0, .70, .70, .60, .60, .70, .70, 1.0, 1.0, .80, .80],
    "hbeta": [.80, 1.0, .70, .80, 1.0, .50, .40, .40, .50, 1.0, .80, .70, 1.0, .80],
    "delta": [1.0, .90, 1.0, .80, .60, .60, .50, .50, .60, .60, .80, 1.0, .90, 1.0],
    "blink": [1.0, .50, .45, .15, .03, .02, .01, .01, .02, .03, .15, .45, .50, 1.0],
    "muscle": [.20, .80, .15, .30, 1.0, .20, .10, .10, .20, 1.0, .30, .15, .80, .20],
}


@dataclasses.dataclass(frozen=True)
class StateProfile:
    """Source amplitudes (µV RMS at topography weight 1) and event rates (per s) of a state.

    `alpha_shift` and `theta_hz`/`delta_hz` move the peaks; `sem` adds slow lateral eye
    movements (µV) on F7/F8.
    """

    alpha: float
    theta: float
    beta: float
    hbeta: float
    delta: float
    blink_rate: float
    muscle_rate: float
    alpha_shift: float = 0.0
    theta_hz: float = 6.0
    delta_hz: float = 2.0
    sem: float = 0.0


# The documented state table. Directions follow the literature: posterior alpha grows in
# relaxed wakefulness (Klimesch 1999); frontal-midline theta grows with focused attention
# and with meditation, where alpha also slows (Ishihara & Yoshii 1972; Cahn & Polich 2006);
# drowsiness drops alpha and raises theta/delta with slow eye movements (Santamaria &
# Chiappa 1987); stress suppresses alpha and raises (high) beta and muscle activity
# (Ray & Cole 1985); blink rate falls with focus (Stern et al. 1994).
PROFILES: dict[str, StateProfile] = {
    "neutral": StateProfile(8.0, 4.0, 4.0, 2.0, 3.0, 0.30, 0.05),
    "stressed": StateProfile(3.0, 3.5, 7.0, 6.0, 3.0, 0.60, 0.30),
    "focused": StateProfile(4.0, 5.0, 8.0, 2.5, 3.0, 0.12, 0.05),
    "relaxed_awake": StateProfile(15.0, 3.5, 3.0, 1.5, 3.0, 0.25, 0.02),
    "meditative": StateProfile(10.0, 11.0, 2.5, 1.2, 4.0, 0.05, 0.01, alpha_shift=-1.5),
    "drowsy": StateProfile(3.0, 8.0, 2.0, 1.0, 12.0, 0.05, 0.01, alpha_shift=-1.0,
                           theta_hz=5.0, sem=40.0),
}


@dataclasses.dataclass(frozen=True)
class TwinSubject:
    """One simulated wearer: individual alpha frequency, 1/f exponent, gains, line pickup."""

    iaf: float
    exponent: float
    background_uv: float
    gain: np.ndarray
    line_uv: np.ndarray
    blink_uv: float


def twin_subject(*, key: PRNGKeyArray) -> TwinSubject:
    """Draw a subject: IAF ~ N(10, 0.7) Hz (Klimesch 1999), 1/f exponent in [1.4, 2.0],
    background 6-10 µV RMS, channel gains x0.8-1.2 (contact quality), line pickup 1-4 µV,
    blink amplitude 100-200 µV."""
    rng = as_generator(key, what="The EEG twin")
    return TwinSubject(
        iaf=float(10.0 + 0.7 * rng.standard_normal()),
        exponent=float(rng.uniform(1.4, 2.0)),
        background_uv=float(rng.uniform(6.0, 10.0)),
        gain=rng.uniform(0.8, 1.2, 14),
        line_uv=rng.uniform(1.0, 4.0, 14),
        blink_uv=float(rng.uniform(100.0, 200.0)),
    )


def _shaped_noise(rng, n: int, fs: float, psd, count: int = 1) -> np.ndarray:
    """`count` unit-RMS Gaussian processes with spectrum shape `psd(f)`, shape `(count, n)`."""
    f = np.fft.rfftfreq(n, 1.0 / fs)
    shape = (count, f.shape[0])
    coef = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * np.sqrt(psd(f))
    x = np.fft.irfft(coef, n=n, axis=-1)
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True))


def _peak(fc: float, width: float):
    return lambda f: np.exp(-0.5 * ((f - fc) / width) ** 2)


def _events(rng, n: int, fs: float, rate: float, length: int, lo: float, hi: float):
    """Poisson events (rate per s) convolved with a Hann bump of `length` samples, each
    with an amplitude uniform in [lo, hi]."""
    onsets = rng.uniform(size=n) < rate / fs
    amps = rng.uniform(lo, hi, n) * onsets
    bump = np.hanning(length + 2)[1:-1]
    return np.convolve(amps, bump, mode="full")[:n]


def _segment(rng, subject: TwinSubject, p: StateProfile, n: int, fs: float,
             line_freq: float) -> np.ndarray:
    """One stationary segment in µV, shape `(14, n)`."""
    topo = {name: np.asarray(w) for name, w in _TOPO.items()}
    psd_bg = lambda f: (f**2 + 1.0) ** (-subject.exponent / 2)  # noqa: E731  (knee at 1 Hz)
    x = subject.background_uv * _shaped_noise(rng, n, fs, psd_bg, 14)
    sources = {
        "alpha": (p.alpha, _peak(subject.iaf + p.alpha_shift, 1.0)),
        "theta": (p.theta, _peak(p.theta_hz, 0.9)),
        "beta": (p.beta, _peak(18.0, 3.0)),
        "hbeta": (p.hbeta, _peak(27.0, 5.0)),
        "delta": (p.delta, _peak(p.delta_hz, 0.8)),
    }
    for name, (amp, psd) in sources.items():
        # One common source plus a weaker independent part per channel (volume conduction).
        common = _shaped_noise(rng, n, fs, psd, 1)
        local = _shaped_noise(rng, n, fs, psd, 14)
        x = x + amp * topo[name][:, None] * (0.8 * common + 0.6 * local)
    blinks = _events(rng, n, fs, p.blink_rate, int(0.3 * fs), 0.7, 1.0) * subject.blink_uv
    x = x + topo["blink"][:, None] * blinks[None, :]
    env = _events(rng, n, fs, p.muscle_rate, int(0.6 * fs), 15.0, 35.0)
    emg = _shaped_noise(rng, n, fs, lambda f: ((f > 20) & (f < 60)).astype(float), 14)
    x = x + topo["muscle"][:, None] * env[None, :] * emg
    if p.sem > 0:
        sem = p.sem * _shaped_noise(rng, n, fs, _peak(0.3, 0.15), 1)[0]
        x[1] += sem
        x[12] -= sem
    t = np.arange(n) / fs
    x = x + subject.line_uv[:, None] * np.sin(2 * np.pi * line_freq * t)[None]
    return x * subject.gain[:, None]


def simulate_twin(
    states: Sequence[str],
    *,
    seconds: float,
    key: PRNGKeyArray,
    subject: TwinSubject | None = None,
    fs: float = EPOC_FS,
    line_freq: float = 50.0,
    profiles: dict[str, StateProfile] | None = None,
) -> EEGRecording:
    """Simulate an Emotiv Epoc X recording that passes through `states`, in order.

    Each segment is stationary: a $1/f^\\chi$ background per channel, state-dependent
    rhythms (alpha at the subject's IAF, frontal theta, beta, high beta, delta; each a
    narrow-band Gaussian process shared across channels through a topography plus a local
    part), blinks on the frontal channels, muscle bursts on the temporal ones, slow eye
    movements when drowsy and line noise. The table of amplitudes is
    `nrtjax.eeg.twin.PROFILES`. Segments are marked by annotations `state/NAME`.

    **Arguments:**

    - `states`: names from `STATES` (or `"neutral"`, the baseline), in order.
    - `seconds`: length of each segment.
    - `key`: PRNG key for the noise (the subject is drawn from it if not given).
    - `subject`: a [`nrtjax.eeg.twin.TwinSubject`][]; pass the same one for a session and
        its baseline.
    - `fs`: sampling rate (Epoc X: 128 Hz); `line_freq`: mains frequency in Hz.
    - `profiles`: extra or replacement [`nrtjax.eeg.twin.StateProfile`][]s by name
        (default: `PROFILES` only).

    **Returns:** an [`nrtjax.eeg.io.EEGRecording`][] in volts with the 14 Epoc channels.
    """
    table = {**PROFILES, **(profiles or {})}
    unknown = [s for s in states if s not in table]
    if unknown or not states:
        raise ValueError(f"Unknown twin states {unknown or states}; choose from "
                         f"{list(table)}.")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}.")
    ksub, key = jr.split(key)
    subject = twin_subject(key=ksub) if subject is None else subject
    n = int(round(seconds * fs))
    rng = as_generator(key, what="The EEG twin")
    parts = [_segment(rng, subject, table[s], n, fs, line_freq) for s in states]
    ann = tuple((i * n / fs, n / fs, f"state/{s}") for i, s in enumerate(states))
    return EEGRecording(np.concatenate(parts, axis=1) * 1e-6, fs, EPOC_CHANNELS,
                        "emotiv-epoc-x-twin", ann)


def state_labels(rec: EEGRecording, times: np.ndarray, window_s: float,
                 states: Sequence[str] = STATES) -> np.ndarray:
    """The state index of each window ending at `times` (from `state/NAME` annotations);
    -1 where the window is not wholly inside one annotated state."""
    labels = np.full(len(times), -1)
    for onset, dur, desc in rec.annotations:
        if not desc.startswith("state/") or desc[6:] not in states:
            continue
        inside = (times - window_s >= onset - 1e-9) & (times <= onset + dur + 1e-9)
        labels[inside] = states.index(desc[6:])
    return labels
