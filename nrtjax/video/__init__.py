"""nrtjax.video: motion in video as rhythm (docs/duets.md).

Read any video OpenCV opens frame by frame, extract motion energy and the vertical
position of the moving mass, generate stimuli with a known rhythm, and turn the motion
into the forcing of the duet's drummer and the register of its melodist.
"""

from . import coupling as coupling, io as io, motion as motion, stimuli as stimuli
from .coupling import (
    MotionForcing as MotionForcing,
    has_beat as has_beat,
    motion_forcing as motion_forcing,
    motion_phase as motion_phase,
    register_from_position as register_from_position,
)
from .io import (
    Crop as Crop,
    VideoError as VideoError,
    VideoInfo as VideoInfo,
    VideoTruncatedWarning as VideoTruncatedWarning,
    iter_frames as iter_frames,
    probe as probe,
    read_frames_at as read_frames_at,
)
from .motion import (
    MotionFeatures as MotionFeatures,
    extract_motion as extract_motion,
    resample as resample,
)
from .stimuli import (
    STIMULI as STIMULI,
    Stimulus as Stimulus,
    generate as generate,
    walker_points as walker_points,
)
