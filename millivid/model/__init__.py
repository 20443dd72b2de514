"""The video DiT over packed plan-step tokens, its packing, and sampling with K/V reuse.

The training task lives in ``millivid.jobs.video_task``, the layer that reads the presets.
"""

from millivid.model.config import DiTConfig
from millivid.model.ddim_sampler import sample_targets
from millivid.model.dit import ContextCache, VideoDiT
from millivid.model.packing import pack, pack_spans, patchify, unpack_targets, unpatchify
from millivid.model.tokens import NO_ACTION, Tokens
from millivid.nn import count_parameters

__all__ = [
    "NO_ACTION",
    "ContextCache",
    "DiTConfig",
    "Tokens",
    "VideoDiT",
    "count_parameters",
    "pack",
    "pack_spans",
    "patchify",
    "sample_targets",
    "unpack_targets",
    "unpatchify",
]
