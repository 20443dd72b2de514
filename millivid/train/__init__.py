"""The one trainer (autoencoder, video model, label probe), its atomic checkpoints and its
continuation states."""

from millivid.train.checkpoint import (
    CheckpointError,
    check_resumable,
    latest_checkpoint,
    load_checkpoint,
    load_weights_into,
    write_checkpoint,
)
from millivid.train.config import RESUMABLE_KEYS, TrainConfig
from millivid.train.continuation import read_continuation, write_continuation
from millivid.train.optim import (
    build_optimizers,
    ema_decay_at,
    lr_factor,
    optimizer_step,
    split_parameters,
)
from millivid.train.signals import StepBoundaryStop
from millivid.train.trainer import TrainTask, bf16_megabytes, train

__all__ = [
    "RESUMABLE_KEYS",
    "CheckpointError",
    "TrainConfig",
    "TrainTask",
    "bf16_megabytes",
    "build_optimizers",
    "check_resumable",
    "ema_decay_at",
    "lr_factor",
    "latest_checkpoint",
    "load_checkpoint",
    "load_weights_into",
    "optimizer_step",
    "read_continuation",
    "StepBoundaryStop",
    "split_parameters",
    "train",
    "write_checkpoint",
    "write_continuation",
]
