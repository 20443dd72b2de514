"""Short content hashes of weights and arrays: what made a latent cache or a rollout state."""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def weights_digest(module: torch.nn.Module) -> str:
    """A short hash of a module's weights (names, dtypes, shapes and values)."""
    h = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(tensor.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def arrays_digest(*arrays: np.ndarray | None) -> str:
    """A short hash of arrays (dtypes, shapes and values; None counts as absent)."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()
