"""DiT video model configuration (paper §3.2, A.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DiTConfig:
    """Transformer size and attention mode over the packed token sequence of one plan step.

    ``attention``: ``full`` (every token attends to every token, the paper) or
    ``context-causal`` (context attends to context only, targets to everything; makes context
    K/V reusable across denoising steps). ``qk_norm``: RMS-normalise queries and keys per head
    (bf16 stability). ``checkpointing``: activation checkpointing per block (training only).
    ``pose_rope``: rotate part of every query and key by the token's camera pose (needs
    ``condition`` poses or both), so that attention scores depend on the pose difference
    between two frames and a target can look up the context frames taken from where it stands
    (``embed.pose_angles``); an extension of the paper, off by default. ``action_adaln``: the
    frame's action also steers every block's adaLN modulation (a learned embedding added to the
    (time, level) condition), besides the action embedding added to the token (needs
    ``condition`` actions or both); an extension of the paper, off by default.
    """

    width: int = 256
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    attention: Literal["full", "context-causal"] = "full"
    qk_norm: bool = True
    checkpointing: bool = False
    condition: Literal["actions", "poses", "both"] = "actions"
    pose_rope: bool = False
    action_adaln: bool = False

    @property
    def uses_poses(self) -> bool:
        return self.condition in ("poses", "both")

    @property
    def uses_actions(self) -> bool:
        return self.condition in ("actions", "both")
