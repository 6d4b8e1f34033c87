"""EEG in, cognitive-state biomarkers out: MNE readers, band powers, artefacts, the Emotiv
Epoc X digital twin, the biomarker -> duet-parameter mapping and block streaming."""

from . import (
    artifacts as artifacts,
    bands as bands,
    biomarkers as biomarkers,
    classify as classify,
    io as io,
    mapping as mapping,
    stream as stream,
    twin as twin,
)
from .artifacts import (
    ArtifactThresholds as ArtifactThresholds,
    BadChannelWarning as BadChannelWarning,
    bad_channels as bad_channels,
    exclude_bad_channels as exclude_bad_channels,
)
from .bands import (
    BANDS as BANDS,
    band_powers as band_powers,
    sliding_band_powers as sliding_band_powers,
)
from .biomarkers import BIOMARKERS as BIOMARKERS, Baseline as Baseline, analyse as analyse
from .classify import StateClassifier as StateClassifier, confusion_matrix as confusion_matrix
from .io import (
    ChannelFallbackWarning as ChannelFallbackWarning,
    EEGError as EEGError,
    EEGRecording as EEGRecording,
    filter_eeg as filter_eeg,
    load_eeg as load_eeg,
    pick_channels as pick_channels,
    write_eeg as write_eeg,
)
from .mapping import map_biomarkers as map_biomarkers
from .stream import EEGStreamer as EEGStreamer, stream_duet as stream_duet
from .twin import (
    EPOC_CHANNELS as EPOC_CHANNELS,
    STATES as STATES,
    simulate_twin as simulate_twin,
    twin_subject as twin_subject,
)
