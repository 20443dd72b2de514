"""millivid: hierarchical latents and coarse-to-fine diffusion rollout for long, consistent video.

pipe = millivid.load("checkpoints/mini/millivid")
frames = pipe(context_frames, actions, poses=poses)  # uint8 [frames, H, W, 3]
pipe.save("my-model")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Pipeline", "load"]

if TYPE_CHECKING:
    from millivid.pipeline import Pipeline, load


def __getattr__(name: str) -> Any:
    """``load`` and ``Pipeline`` from ``millivid.pipeline``, imported on first use, so that
    ``import millivid`` (and ``millivid.plan``, which must stay free of torch) imports no torch."""
    if name in __all__:
        from millivid import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'millivid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
