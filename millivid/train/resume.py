"""Where a training run goes on from: its checkpoint or a continuation state, and its
``metrics.jsonl`` cut back to the step it resumes at."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm import tqdm

from millivid.atomic import write_text_atomic
from millivid.train.checkpoint import (
    CheckpointError,
    check_resumable,
    latest_checkpoint,
    load_checkpoint,
    load_trainer_state,
    load_weights_into,
)
from millivid.train.continuation import load_continuation_into, read_continuation


def _write_lines(path: Path, lines: list[str]) -> None:
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (a resumed run rewrites them), and a last line cut short by
    a kill while it was appended (written after the checkpoint of its step, so past it)."""
    if not path.exists():
        return
    text = path.read_text()
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()
    kept = []
    for number, line in enumerate(lines, 1):
        try:
            record_step = json.loads(line)["step"] if line else None
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(
                f"{path}:{number}: not a JSON line with a 'step' ({err}): fix or delete that line"
            ) from None
        if record_step is not None and record_step <= step:
            kept.append(line)
    _write_lines(path, kept)


def resume_run(out_dir, resume_from, model, ema, optimizers, config, rank) -> int:
    """Load the checkpoint in ``out_dir``, or with ``resume_from`` the continuation state there
    unless ``out_dir`` holds a checkpoint as far along; returns the step reached. The EMA
    (an ``AveragedModel``) counts one update per step, from 0 after a state that kept only the
    model (``ema_decay_at``'s warmup again)."""
    state = read_continuation(resume_from) if resume_from is not None else None
    keep = "all"
    if state is None or checkpoint_step(out_dir) >= state.step:
        start, changed = _restore(out_dir, model, ema, optimizers, config)
        source = out_dir
    else:
        changed = check_resumable(state.config, config, state.folder / "config.json")
        load_continuation_into(state, model, ema.module if ema is not None else None, optimizers)
        start, source, keep = state.step, state.folder, state.keep
        if rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_lines(out_dir / "metrics.jsonl", state.log_lines)
    if ema is not None:  # at 0 the next update copies the weights
        ema.n_averaged.fill_(start if keep == "all" else 0)
    if rank == 0:
        note = f" (changed: {', '.join(changed)})" if changed else ""
        if keep == "model":
            note += "; the state kept the weights only: EMA and optimizer state start afresh"
        tqdm.write(f"resumed {source} at step {start}{note}", file=sys.stderr)
    return start


def checkpoint_step(run: Path) -> int:
    """The step of the latest checkpoint in ``run``; -1 when there is none."""
    try:
        return int(load_trainer_state(run)["step"])
    except CheckpointError:
        return -1


def _restore(out_dir, model, ema, optimizers, config) -> tuple[int, list[str]]:
    """Load the latest checkpoint of ``out_dir``; (its step, the config keys changed since)."""
    folder = latest_checkpoint(out_dir)
    weights, saved_config = load_checkpoint(folder)
    changed = check_resumable(saved_config, config, folder / "config.json")
    load_weights_into(model, weights, str(folder))
    if ema is not None:
        ema_weights, _ = load_checkpoint(folder, ema=True)
        load_weights_into(ema.module, ema_weights, str(folder / "ema.safetensors"))
    state = load_trainer_state(out_dir)
    if len(state["optimizers"]) != len(optimizers):
        raise CheckpointError(f"{folder / 'state.pt'}: optimizer layout differs")
    for o, s in zip(optimizers, state["optimizers"], strict=True):
        o.load_state_dict(s)
    return int(state["step"]), changed
