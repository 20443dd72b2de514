"""Training curves: the ``metrics.jsonl`` of one or more runs (any task of the shared trainer)
as one figure, loss (smoothed, log scale) and throughput against steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from millivid.atomic import atomic_path
from millivid.plots import pyplot


def read_log(path: Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (``path``: the file or its run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log (metrics.jsonl) there")
    records = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{i}: not a JSON line ({e.msg})") from None
    if not records or "step" not in records[0] or "loss" not in records[0]:
        raise ValueError(f"{path}: expected records with 'step' and 'loss'")
    return records


def smooth(values: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average, bias-corrected (the first value is not pulled towards 0)."""
    out, acc, weight = np.empty(len(values)), 0.0, 0.0
    for i, v in enumerate(values):
        acc = (1 - alpha) * acc + alpha * v
        weight = (1 - alpha) * weight + alpha
        out[i] = acc / weight
    return out


def plot_training(logs: dict[str, Path], out: Path) -> Path:
    """Loss and steps/s of every run in ``logs`` (name -> log) into ``out`` (.png, .svg ...)."""
    plt = pyplot()

    fig, (ax_loss, ax_rate) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, log in logs.items():
        rec = read_log(log)
        step = np.array([r["step"] for r in rec])
        (line,) = ax_loss.plot(step, smooth(np.array([r["loss"] for r in rec])), label=name)
        ax_loss.plot(step, [r["loss"] for r in rec], color=line.get_color(), alpha=0.15, lw=0.8)
        rates = [(s, r["steps_per_s"]) for s, r in zip(step, rec) if s > step[0]]  # skip compile
        if rates:
            ax_rate.plot(*zip(*rates), color=line.get_color(), label=name)
    ax_loss.set(xlabel="step", ylabel="training loss (EMA 0.1)", yscale="log")
    ax_rate.set(xlabel="step", ylabel="steps/s")
    for ax in (ax_loss, ax_rate):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return out
