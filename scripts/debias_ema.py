"""Remove the initial-weight bias from an EMA export of a run trained without EMA warmup.

Runs before commit <EMA warmup> averaged from the first step with a fixed decay d, so after n
updates their EMA holds d**(n-1) of the (seeded, reproducible) initial weights W0. This rebuilds
W0 from the run's config and seed and writes (EMA - c W0) / (1 - c), c = d**(n-1), as bf16.
A one-off for the models of the 2026-11-25 mini run (docs/RESULTS.md); new runs do not need it.

    python scripts/debias_ema.py EXPORTED_RUN UPDATES OUT
"""

import sys
from pathlib import Path

import torch

from millivid.model.task import build_video_model
from millivid.rollout.generate import load_video_model
from millivid.train.checkpoint import load_checkpoint, write_checkpoint


def main(folder: Path, updates: int, out: Path) -> None:
    _, cfg, method = load_video_model(folder, "cpu")
    ema, config = load_checkpoint(folder)
    torch.manual_seed(cfg.video_train.seed)  # as millivid.train.train builds the model
    init = build_video_model(cfg, method).state_dict()
    c = cfg.video_train.ema_decay ** (updates - 1)
    weights = {
        k: ((v.float() - c * init[k]) / (1 - c)).to(v.dtype) if v.is_floating_point() else v
        for k, v in ema.items()
    }
    print(f"{folder}: removed {c:.3f} of the initial weights -> {write_checkpoint(out, weights, config)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
