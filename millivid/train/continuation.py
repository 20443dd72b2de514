"""Continuation state: the small folder a training needs to go on in a new run folder, e.g. on
another machine that keeps nothing of the first one.

Layout of a continuation folder ``DIR``:

* ``state.json`` — the step, what the state keeps (``keep``), the optimizers' layout and which
  file holds which tensors
* ``config.json`` — the experiment config (as in a checkpoint)
* ``metrics.jsonl`` — the last ``LOG_TAIL`` records of the run's log
* ``tensors-00000.safetensors``, … — in bf16: the weights (``model.*``), the EMA weights
  (``ema.*``) and the optimizer state (``opt<i>.<param index>.<name>``: Muon momentum, AdamW
  moments; AdamW's step counts stay fp32), split so that no file exceeds ``MAX_FILE_BYTES``
  (a single larger tensor gets a file of its own)

Nothing else is needed: batches and noise are functions of (seed, rank, step), and the lr
schedule is a function of the step. What is lost against the full checkpoint is the rounding of
the fp32 weights, EMA and optimizer moments to bf16 (relative error ≤ 2⁻⁹), once per
continuation. ``DIR`` is written as ``DIR.tmp-<random>`` and swapped in like a checkpoint (the
previous version is kept as ``DIR.old`` until the swap is done, and read when ``DIR`` is
incomplete).

``keep="model"`` writes the weights alone, about a third of the size (docs/TRAINING.md). A run
that goes on from such a state loses the EMA's history and the optimizer moments: the EMA starts
again from the weights with its warmup (``ema_decay_at`` from 0 updates), and Muon's momentum
and AdamW's moments and step counts build up again from zero, as in a new run; the step and the
lr schedule go on. ``state.json`` records ``keep``; a state without it (written before) keeps
all, and one that keeps all but lacks the EMA or optimizer tensors is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from millivid.atomic import read_json
from millivid.train.checkpoint import (
    CheckpointError,
    fresh_tmp_folder,
    load_weights_into,
    swap_in_folder,
)

MAX_FILE_BYTES = 16 * 2**20
LOG_TAIL = 10_000
FORMAT = 1
KEEP = ("all", "model")  # what a state keeps: everything, or the weights alone


def _bf16(t: Tensor) -> Tensor:
    t = t.detach().cpu()
    return t.to(torch.bfloat16).contiguous() if t.is_floating_point() else t.contiguous()


def optimizer_tensors(optimizers: list[torch.optim.Optimizer]) -> dict[str, Tensor]:
    """Every optimizer's per-parameter state as ``opt<i>.<param index>.<name>`` tensors in bf16
    (scalars, e.g. AdamW's step count, stay as they are)."""
    out = {}
    for i, opt in enumerate(optimizers):
        for index, state in opt.state_dict()["state"].items():
            for name, value in state.items():
                value = torch.as_tensor(value)
                key = f"opt{i}.{index}.{name}"
                out[key] = _bf16(value) if value.dim() else value.detach().cpu().clone()
    return out


def optimizer_layout(optimizers: list[torch.optim.Optimizer]) -> list[dict[str, Any]]:
    """Each optimizer's type and parameter count (a continuation loads only into the same)."""
    return [
        {"type": type(o).__name__, "params": sum(len(g["params"]) for g in o.param_groups)}
        for o in optimizers
    ]


def shard(tensors: dict[str, Tensor], limit: int = MAX_FILE_BYTES) -> list[dict[str, Tensor]]:
    """Split ``tensors`` (in order) into groups of at most ``limit`` bytes each, counting a
    safetensors header entry as 256 bytes; a larger tensor is a group of its own."""
    groups: list[dict[str, Tensor]] = [{}]
    size = 8
    for key, t in tensors.items():
        nbytes = t.numel() * t.element_size() + 256
        if groups[-1] and size + nbytes > limit:
            groups.append({})
            size = 8
        groups[-1][key] = t
        size += nbytes
    return groups


def write_continuation(
    folder: Path,
    *,
    step: int,
    config: dict[str, Any],
    model: nn.Module,
    ema: nn.Module | None,
    optimizers: list[torch.optim.Optimizer],
    log: Path | None = None,
    keep: str = "all",
) -> Path:
    """Atomically replace ``folder`` with the continuation state of a run at ``step``; ``keep``
    (one of ``KEEP``): ``"model"`` leaves out the EMA weights and the optimizer state."""
    if keep not in KEEP:
        raise ValueError(f"keep={keep!r}: one of {', '.join(KEEP)}")
    tensors = {f"model.{k}": _bf16(v) for k, v in model.state_dict().items()}
    if keep == "all":
        if ema is not None:
            tensors |= {f"ema.{k}": _bf16(v) for k, v in ema.state_dict().items()}
        tensors |= optimizer_tensors(optimizers)
    folder = Path(folder)
    tmp = fresh_tmp_folder(folder)
    files = []
    for n, group in enumerate(shard(tensors)):
        files.append(f"tensors-{n:05d}.safetensors")
        save_file(group, str(tmp / files[-1]))
    state = {
        "format": FORMAT,
        "step": step,
        "keep": keep,
        "optimizers": optimizer_layout(optimizers),
        "files": files,
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    lines = log.read_text().splitlines()[-LOG_TAIL:] if log and log.exists() else []
    (tmp / "metrics.jsonl").write_text("".join(line + "\n" for line in lines if line))
    return swap_in_folder(tmp, folder)


@dataclass
class Continuation:
    """A continuation state read back: its step, what it keeps, config, tensors and log tail."""

    folder: Path
    step: int
    keep: str  # one of KEEP
    config: dict[str, Any]
    optimizers: list[dict[str, Any]]
    tensors: dict[str, Tensor]
    log_lines: list[str]

    def weights(self, prefix: str) -> dict[str, Tensor]:
        """The ``model`` or ``ema`` weights (``{}`` when not stored)."""
        return {
            k[len(prefix) + 1 :]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")
        }


def _state_folder(folder: Path) -> Path | None:
    """``folder``, or ``folder.old`` if a crash cut its swap short: the one holding a state."""
    folder = Path(folder)
    for candidate in (folder, folder.with_name(f"{folder.name}.old")):
        if (candidate / "state.json").exists():
            return candidate
    return None


def continuation_step(folder: Path) -> int | None:
    """The step of the continuation state in ``folder`` (or ``folder.old``); None if none."""
    found = _state_folder(folder)
    return int(read_json(found / "state.json")["step"]) if found is not None else None


def state_to_resume(folder: Path, steps: int) -> Path | None:
    """``folder`` when it holds a continuation state to go on from (else None); a state past
    ``steps`` is refused: the model there is not the one a config of ``steps`` names."""
    step = continuation_step(folder)
    if step is not None and step > steps:
        raise ValueError(
            f"{folder}: its continuation state is at step {step}, past video_train.steps={steps}: "
            "raise the steps, or give --continuation another folder"
        )
    return folder if step is not None else None


def read_continuation(folder: Path) -> Continuation:
    """The continuation state in ``folder`` (or ``folder.old`` if a crash cut its swap short)."""
    found = _state_folder(folder)
    if found is None:
        raise CheckpointError(f"{folder}: no continuation state (expected {folder}/state.json)")
    folder = found
    state = read_json(folder / "state.json")
    if state.get("format") != FORMAT:
        raise CheckpointError(
            f"{folder / 'state.json'}: format {state.get('format')}, not {FORMAT}"
        )
    if (keep := state.get("keep", "all")) not in KEEP:
        raise CheckpointError(f"{folder / 'state.json'}: keep {keep!r}, not one of {KEEP}")
    tensors: dict[str, Tensor] = {}
    for name in state["files"]:
        try:
            tensors |= load_file(str(folder / name))
        except Exception as err:  # safetensors raises its own error types
            raise CheckpointError(f"{folder / name}: cannot read tensors ({err})") from err
    log = folder / "metrics.jsonl"
    return Continuation(
        folder=folder,
        step=int(state["step"]),
        keep=keep,
        config=read_json(folder / "config.json"),
        optimizers=state["optimizers"],
        tensors=tensors,
        log_lines=log.read_text().splitlines() if log.exists() else [],
    )


def load_continuation_into(
    state: Continuation,
    model: nn.Module,
    ema: nn.Module | None,
    optimizers: list[torch.optim.Optimizer],
) -> None:
    """Load weights, EMA weights and optimizer state; the optimizers must have the layout that
    wrote the state (same types and parameter counts). From a state that keeps only the model
    the EMA gets the weights and the optimizers are left as they are (fresh in a new run)."""
    where = str(state.folder)
    load_weights_into(model, state.weights("model"), where)
    if ema is not None:
        weights = state.weights("ema" if state.keep == "all" else "model")
        if not weights:
            raise _missing(state, "EMA (ema.*)")
        load_weights_into(ema, weights, where)
    if state.keep == "model":
        return
    if (layout := optimizer_layout(optimizers)) != state.optimizers:
        raise CheckpointError(
            f"{where}/state.json: optimizers {state.optimizers}, this run has {layout}"
        )
    for i, opt in enumerate(optimizers):
        per_param: dict[int, dict[str, Tensor]] = {}
        for key, value in state.tensors.items():
            if key.startswith(f"opt{i}."):
                _, index, name = key.split(".", 2)
                per_param.setdefault(int(index), {})[name] = value
        if not per_param and state.step > 0:  # every step gives each optimizer its state
            raise _missing(state, f"optimizer {i} ({type(opt).__name__}, opt{i}.*)")
        sd = opt.state_dict()
        sd["state"] = per_param  # load_state_dict casts to each parameter's dtype and device
        opt.load_state_dict(sd)


def _missing(state: Continuation, what: str) -> CheckpointError:
    return CheckpointError(
        f"{state.folder}: its state.json says it keeps {state.keep!r}, but it holds no {what} "
        "tensors: copy the folder again in full, or go on from the run's own checkpoint"
    )
