"""DiT video model configuration (paper §3.2, A.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DiTConfig:
    """Transformer size and attention mode over the packed token sequence of one plan step."""

    width: int = 384
    depth: int = 8
    heads: int = 6
    mlp_ratio: float = 4.0
    attention: Literal["full", "context-causal"] = "full"
    checkpointing: bool = False  # activation checkpointing per block


PRESETS = {
    "tiny": DiTConfig(width=64, depth=2, heads=2),
    "mini": DiTConfig(width=384, depth=8, heads=6),
    "paper": DiTConfig(width=768, depth=12, heads=12),  # DiT-B
}
