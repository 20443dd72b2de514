"""The saved state of an interrupted rollout: its latent store, the next step, and the request.

A state file (``OUT.state.safetensors``; ``OUT/.batch-<name>.state.safetensors`` for folders)
holds the latent store and ``next_step``; its metadata holds a fingerprint of the request that
made it (model and autoencoder weights, method, inputs, context, frames, seed, DDIM steps,
guidance, plan budgets). A re-run resumes only a state whose fingerprint equals its own, so a
run with other settings never continues somebody else's rollout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from millivid.atomic import atomic_path
from millivid.rollout.store import LatentStore

FINGERPRINT_KEY = "millivid.request"


def _normal(fingerprint: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(fingerprint))  # tuples -> lists, as read back


def save_rollout_state(
    path: Path, store: LatentStore, next_step: int, fingerprint: dict[str, Any]
) -> None:
    """Write the store, ``next_step`` and the request's fingerprint atomically to ``path``."""
    state = store.state_dict()
    state["next_step"] = torch.tensor(next_step)
    metadata = {FINGERPRINT_KEY: json.dumps(_normal(fingerprint))}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def saved_fingerprint(path: Path) -> dict[str, Any] | None:
    """The request fingerprint stored in a state file (None for a state without one)."""
    with safe_open(str(path), framework="pt") as f:
        text = (f.metadata() or {}).get(FINGERPRINT_KEY)
    return json.loads(text) if text else None


def load_rollout_state(
    path: Path, fingerprint: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], int]:
    """(store state, next step) of a state file made by the same request; a ``ValueError``
    naming the file and the differing settings otherwise."""
    try:
        saved = saved_fingerprint(path)
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(
            f"{path}: unreadable rollout state ({err}); delete it to start over"
        ) from err
    own = _normal(fingerprint)
    if saved != own:
        keys = sorted(
            k for k in own.keys() | (saved or {}).keys() if own.get(k) != (saved or {}).get(k)
        )
        what = f"differs in: {', '.join(keys)}" if saved else "records no request"
        raise ValueError(
            f"{path}: an interrupted rollout of another request ({what}); delete it to start "
            "over, or re-run with that rollout's settings to resume it"
        )
    state = load_file(str(path))
    return state, int(state["next_step"])
