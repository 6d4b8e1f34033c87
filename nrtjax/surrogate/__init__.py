"""The TCN surrogate of ASHLE (docs/surrogate.md): ground truth by vmap over synthetic
songs, a causal TCN with attention inside ASHLE's physics references (`Surrogate`),
physics-informed losses, training and metrics."""

from . import (
    data as data,
    dataset as dataset,
    evaluate as evaluate,
    losses as losses,
    songs as songs,
    tcn as tcn,
    training as training,
)
from .data import (
    ASHLE_SETTINGS as ASHLE_SETTINGS,
    forcing_from_envelope as forcing_from_envelope,
    ground_truth as ground_truth,
    ground_truth_model as ground_truth_model,
    onset_envelope as onset_envelope,
    render_song as render_song,
)
from .dataset import (
    DatasetSpec as DatasetSpec,
    load_or_make as load_or_make,
    make_dataset as make_dataset,
    training_arrays as training_arrays,
)
from .evaluate import (
    SurrogateOutput as SurrogateOutput,
    freq_mae as freq_mae,
    load as load,
    pearson_r as pearson_r,
    plv_retention as plv_retention,
    predict as predict,
    predict_arrays as predict_arrays,
    save_model as save_model,
    surrogate_metrics as surrogate_metrics,
    tracking_plv as tracking_plv,
)
from .losses import (
    LossWeights as LossWeights,
    loss_amp as loss_amp,
    loss_freq as loss_freq,
    loss_mse as loss_mse,
    loss_plv as loss_plv,
    total_loss as total_loss,
)
from .songs import (
    HELDOUT_PATTERNS as HELDOUT_PATTERNS,
    TRAIN_PATTERNS as TRAIN_PATTERNS,
    SongStyle as SongStyle,
    make_song as make_song,
)
from .tcn import (
    TCN as TCN,
    Surrogate as Surrogate,
    CausalAttention as CausalAttention,
    TCNBlock as TCNBlock,
    forcing_frequency as forcing_frequency,
    locked_frequency as locked_frequency,
    locked_lag as locked_lag,
)
from .training import (
    NonFiniteLossError as NonFiniteLossError,
    TrainState as TrainState,
    init_state as init_state,
    load_state as load_state,
    make_step_fn as make_step_fn,
    save_state as save_state,
    train as train,
)
