"""Checkpoints: a folder of safetensors weights + config.json + trainer state, written atomically.

Layout of ``RUN/checkpoint/``:

* ``model.safetensors`` — the weights (``ema.safetensors`` too when EMA is on)
* ``config.json`` — the experiment config the weights belong to
* ``state.pt`` — optimizer, scheduler and RNG state and the step (tensors and plain types only,
  so it loads with ``torch.load(weights_only=True)``)

A checkpoint is written into ``checkpoint.tmp-<random>`` and renamed into place; the previous one
is moved to ``checkpoint.old`` first and removed last, so a crash at any moment leaves a loadable
checkpoint (``latest_checkpoint`` falls back to ``checkpoint.old``). Single files are written with
``millivid.atomic``; this folder swap is the one other rename in millivid.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from millivid.train.config import RESUMABLE_KEYS, TrainConfig

CHECKPOINT = "checkpoint"


class CheckpointError(ValueError):
    """A missing, unreadable or mismatched checkpoint."""


def _cpu_contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def write_checkpoint(
    run: Path,
    weights: dict[str, torch.Tensor],
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    ema: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Atomically replace ``run/checkpoint`` with these weights, config and trainer state."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    final = run / CHECKPOINT
    tmp = fresh_tmp_folder(final)
    save_file(_cpu_contiguous(weights), str(tmp / "model.safetensors"))
    if ema is not None:
        save_file(_cpu_contiguous(ema), str(tmp / "ema.safetensors"))
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if state is not None:
        torch.save(state, tmp / "state.pt")
    return swap_in_folder(tmp, final)


def fresh_tmp_folder(final: Path) -> Path:
    """A new, empty ``final.tmp-<random>`` folder to write a new version of ``final`` into.

    The leftovers of writers killed mid-write are removed first. The name is unique, so two
    writers of one ``final`` never share a folder: the one whose folder was removed fails instead
    of swapping in a mix of both writers' files.
    """
    if final.parent.is_dir():
        for p in final.parent.iterdir():
            if _is_tmp_folder(p, final) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
    tmp = final.with_name(f"{final.name}.tmp-{secrets.token_hex(4)}")
    tmp.mkdir(parents=True)  # not exist_ok: a name in use is never shared
    return tmp


def _is_tmp_folder(path: Path, final: Path) -> bool:
    return path.name == f"{final.name}.tmp" or path.name.startswith(f"{final.name}.tmp-")


def swap_in_folder(tmp: Path, final: Path) -> Path:
    """Rename the finished ``tmp`` to ``final``. The previous ``final`` is moved to ``final.old``
    first and removed last, so a crash at any moment leaves one complete version."""
    old = final.with_name(f"{final.name}.old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run: Path) -> Path:
    """``run/checkpoint`` (or ``checkpoint.old`` if a crash interrupted the swap)."""
    run = Path(run)
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
        if (run / name / "model.safetensors").exists() and (run / name / "config.json").exists():
            return run / name
    raise CheckpointError(
        f"{run}: no checkpoint found (expected {run / CHECKPOINT}/model.safetensors)"
    )


def checkpoint_folder(run: Path) -> Path:
    """The checkpoint folder of ``run``: itself when it holds the weights, else its latest."""
    run = Path(run)
    return run if (run / "model.safetensors").exists() else latest_checkpoint(run)


def load_checkpoint(
    run: Path, *, ema: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, config dict) of a run folder (or of a checkpoint folder itself).

    ``ema=True`` returns the EMA weights when the run has them.
    """
    folder = checkpoint_folder(run)
    name = (
        "ema.safetensors" if ema and (folder / "ema.safetensors").exists() else "model.safetensors"
    )
    try:
        weights = load_file(str(folder / name))
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{folder / name}: cannot read weights ({err})") from err
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{folder / 'config.json'}: cannot read config ({err})") from err
    return weights, config


def export_bf16(run: Path, out: Path) -> Path:
    """Write a run's weights (EMA when it has them) as bf16 safetensors + config.json into
    ``out``: small, shippable checkpoints (checkpoints/), loadable like any run folder."""
    weights, config = load_checkpoint(run, ema=True)
    half = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in weights.items()}
    return write_checkpoint(Path(out), half, config)


def load_trainer_state(run: Path, mmap: bool = False) -> dict[str, Any]:
    """The optimizer/scheduler/RNG/step state saved with the latest checkpoint of ``run`` (a run
    or checkpoint folder; ``mmap``: read lazily, for a caller that wants the step only)."""
    path = checkpoint_folder(run) / "state.pt"
    if not path.exists():
        raise CheckpointError(f"{path}: no trainer state to resume from")
    try:
        return torch.load(path, weights_only=True, mmap=mmap)
    except Exception as err:  # zip, pickle and EOF errors come in many types
        raise CheckpointError(
            f"{path}: unreadable trainer state (truncated or corrupt: {str(err).split('. ')[0]}): "
            "start over with --overwrite, or restore the run folder from a copy"
        ) from None


def trained_step(run: Path) -> int | None:
    """The training step the checkpoint of ``run`` (a run or checkpoint folder) was saved at;
    None for a checkpoint without trainer state (an exported or shipped one). Step 0 (untrained
    weights, left by a run that failed before its first step) is a ``CheckpointError`` naming
    the folder."""
    folder = checkpoint_folder(run)
    if not (folder / "state.pt").exists():
        return None
    step = int(load_trainer_state(folder, mmap=True)["step"])
    if step < 1:
        raise CheckpointError(
            f"{folder}: untrained weights (saved at step {step}, before any training step): "
            "train the run (again with --overwrite) or give another checkpoint"
        )
    return step


def load_weights_into(model: torch.nn.Module, weights: dict[str, torch.Tensor], where: str) -> None:
    """``model.load_state_dict(weights)`` with an error naming the checkpoint and the key."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        key = (missing or unexpected)[0]
        what = "missing from" if missing else "unexpected in"
        raise CheckpointError(
            f"{where}: key {key!r} {what} the checkpoint ({len(missing)} missing, "
            f"{len(unexpected)} unexpected): was it trained with another config or method?"
        )
    for key, value in weights.items():
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{where}: {key!r} has shape {tuple(value.shape)} in the checkpoint but "
                f"{tuple(own[key].shape)} in the model: config mismatch"
            )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in weights.items()})


_TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def config_changes(saved: dict[str, Any], config: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (sections key by key)."""
    changed = []
    for key in sorted(set(saved) | set(config)):
        old, new = saved.get(key), config.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += config_changes(old, new, f"{prefix}{key}.")
        elif old != new:
            changed.append(prefix + key)
    return changed


def _resumable(key: str, config: dict[str, Any]) -> bool:
    """``key`` is one of ``RESUMABLE_KEYS`` of a training section (a ``TrainConfig``)."""
    *path, name = key.split(".")
    section: Any = config
    for part in path:
        section = section.get(part) if isinstance(section, dict) else None
    return name in RESUMABLE_KEYS and isinstance(section, dict) and _TRAIN_FIELDS <= set(section)


def check_resumable(saved: dict[str, Any], config: dict[str, Any], where: Path) -> list[str]:
    """The keys in which ``config`` differs from the ``saved`` config of the run it resumes;
    a ``CheckpointError`` naming them if any is not a ``RESUMABLE_KEYS`` key of a training
    section (``where``: the saved config's file, for the message)."""
    config = json.loads(json.dumps(config))
    changed = config_changes(saved, config)
    refused = [k for k in changed if not _resumable(k, config)]
    if refused:
        raise CheckpointError(
            f"{where}: config differs from this run's (keys: {', '.join(refused)}); only "
            f"{', '.join(RESUMABLE_KEYS)} of a training section may change on resume: resume "
            "with the same preset and other overrides, or start a new run with a new --out"
        )
    return changed
