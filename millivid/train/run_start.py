"""The checks a training run makes before any work: usable training values, one way to start
(fresh, ``--resume``, ``--resume-from`` or ``--overwrite``), and no existing run silently
replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from millivid.train.checkpoint import CheckpointError, latest_checkpoint
from millivid.train.config import TrainConfig, check_train_config
from millivid.typed_config import to_dict


def check_run_start(
    out_dir: Path,
    cfg: TrainConfig,
    config: dict[str, Any],
    *,
    resume: bool = False,
    resume_from: Path | None = None,
    overwrite: bool = False,
) -> None:
    """The checks ``train`` makes before any work (callers that load data first call it
    earlier too): a usable ``cfg``, one way to start, and no existing run silently replaced."""
    check_train_config(cfg, _section_of(cfg, config))
    if resume and resume_from is not None:
        raise ValueError(
            "--resume continues the checkpoint in --out, --resume-from a continuation state (or "
            "that checkpoint when it is as far along): pass one of them"
        )
    if overwrite and (resume or resume_from is not None):
        raise ValueError(
            "--overwrite starts the run in --out over, --resume continues it: pass one"
        )
    existing = _existing_run(Path(out_dir))
    if existing and not (resume or resume_from is not None or overwrite):
        raise CheckpointError(
            f"{out_dir}: already holds a training run ({existing}); pass --resume to continue "
            "it, --overwrite to replace it, or choose another --out"
        )


def _section_of(cfg: TrainConfig, config: dict[str, Any]) -> str:
    """The key of ``config`` that holds ``cfg`` (e.g. ``video_train``), for error messages."""
    own = to_dict(cfg)
    return next((k for k, v in config.items() if v == own), "train")


def _existing_run(out_dir: Path) -> str | None:
    """What of a training run ``out_dir`` holds (its checkpoint or its log); None if nothing."""
    try:
        return f"checkpoint {latest_checkpoint(out_dir)}"
    except CheckpointError:
        pass
    log = out_dir / "metrics.jsonl"
    return f"log {log}" if log.exists() and log.stat().st_size > 0 else None
