"""Which torch device to use: ``auto`` (every command's default) is cuda if present, else cpu."""

from __future__ import annotations

import os

import torch


def available_devices() -> list[str]:
    """The devices torch can use on this machine: ``cpu``, each ``cuda:N``, ``mps``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return found


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def unavailable_device(asked: str | torch.device, why: str) -> ValueError:
    """The error for a device this machine lacks: names ``--device`` and what is available."""
    return ValueError(
        f"device {str(asked)!r} is not available here ({why}; available: "
        f"{', '.join(available_devices())}): pass --device auto or one of those"
    )


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> this process's CUDA device when there is one, else the CPU; a bare ``"cuda"``
    gets this process's index (LOCAL_RANK under torchrun); anything else as torch spells it.

    A cuda or mps device on a machine without one is a ValueError naming what is available (a
    misspelt device is torch's RuntimeError)."""
    asked = device
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU"
        raise unavailable_device(asked, why)
    if dev.type == "mps" and not _mps_available():
        raise unavailable_device(asked, "no Apple MPS device")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return dev
