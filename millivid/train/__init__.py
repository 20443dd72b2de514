"""The one trainer (autoencoder, video model, label probe) and its atomic checkpoints."""

from millivid.train.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_weights_into,
    write_checkpoint,
)
from millivid.train.config import PRESETS, TrainConfig
from millivid.train.optim import (
    build_optimizers,
    ema_decay_at,
    lr_factor,
    optimizer_step,
    split_parameters,
)
from millivid.train.signals import StepBoundaryStop
from millivid.train.trainer import TrainTask, bf16_megabytes, parameter_count, train

__all__ = [
    "PRESETS",
    "CheckpointError",
    "TrainConfig",
    "TrainTask",
    "bf16_megabytes",
    "build_optimizers",
    "ema_decay_at",
    "lr_factor",
    "latest_checkpoint",
    "load_checkpoint",
    "load_weights_into",
    "optimizer_step",
    "parameter_count",
    "StepBoundaryStop",
    "split_parameters",
    "train",
    "write_checkpoint",
]
