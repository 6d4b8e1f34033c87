"""Audio in and out: loading, onset features, groove, synthesis, the neural duet."""

from . import io as io
from .io import AudioError as AudioError, load_audio as load_audio, write_wav as write_wav

# --- duet ---
from . import mix as mix, synth as synth
from .mix import db_to_gain as db_to_gain, normalize as normalize
from .mix import mix as mix_tracks  # noqa: F401 (re-exported; the name `mix` is the module)
from .mix import peak_dbfs as peak_dbfs
from .synth import (
    DRUMS as DRUMS,
    DrumEvent as DrumEvent,
    Note as Note,
    render_drums as render_drums,
    render_notes as render_notes,
)
from . import duet as duet, melody as melody
from .duet import BlockInfo as BlockInfo, DuetEngine as DuetEngine, DuetParams as DuetParams
from .duet import DuetState as DuetState
from .melody import SCALES as SCALES, MelodyMapping as MelodyMapping
from .mix import soft_limit as soft_limit

# --- groove ---
from . import beat_eval as beat_eval, features as features, groove as groove
from . import groove_drums as groove_drums, groove_mix as groove_mix
from . import resonator as resonator, tracking as tracking
from .beat_eval import f_measure as f_measure
from .groove_drums import DrumEvents as DrumEvents, drum_events as drum_events
from .features import (
    OnsetEnvelope as OnsetEnvelope,
    onset_envelope as onset_envelope,
    onset_envelope_file as onset_envelope_file,
)
from .groove import Groove as Groove, extract_groove as extract_groove
from .groove import extract_groove_envelope as extract_groove_envelope
from .tracking import TrackerSettings as TrackerSettings, Tracking as Tracking, track as track
