"""nrtjax.plots: the figures the jobs draw, one function per figure (Matplotlib loads with
this package, which `import nrtjax` does not import)."""

from . import (
    duet as duet,
    eeg as eeg,
    groove as groove,
    surrogate as surrogate,
    video as video,
)
