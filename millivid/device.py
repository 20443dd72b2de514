"""Which torch device to use: ``auto`` (every command's default) is cuda if present, else cpu."""

from __future__ import annotations

import os

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> this process's CUDA device when there is one, else the CPU; a bare ``"cuda"``
    gets this process's index (LOCAL_RANK under torchrun); anything else as torch spells it."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return dev
