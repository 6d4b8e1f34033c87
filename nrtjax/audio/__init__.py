"""Audio in and out: loading, onset features, groove, synthesis, the neural duet."""

from .io import AudioError as AudioError, load_audio as load_audio, write_wav as write_wav
