"""Where a method's context tokens come from: the one type every layer asks (pure Python).

``LEVELS``: a span at level l reads hierarchical level l of the latents (C channels per token).
``PATCHIFY`` (FramePack): a span at compression level l is level-0 latents patchified with a
2^l x 2^l kernel (4^l C raw values per token, packed zero-padded to 4^(L-1) C), so only level 0
is stored and generated. A ``ContextSource`` is a ``str`` ("levels", "patchify"): it compares
equal to its name and is written to JSON as it.
"""

from __future__ import annotations

from enum import StrEnum


class ContextSource(StrEnum):
    LEVELS = "levels"
    PATCHIFY = "patchify"

    @classmethod
    def _missing_(cls, value: object) -> None:
        raise ValueError(
            f"unknown context source {value!r} (known: {', '.join(s.value for s in cls)})"
        )

    @property
    def patchified(self) -> bool:
        """Spans are level-0 latents patchified to their compression level."""
        return self is ContextSource.PATCHIFY

    def stored_level(self, level: int) -> int:
        """The latent level whose frames a span at ``level`` reads (and a target writes)."""
        return 0 if self.patchified else level

    def kernel(self, level: int) -> int:
        """Patchify kernel exponent of a span at ``level``: 2^kernel x 2^kernel (0: none)."""
        return level if self.patchified else 0

    def input_kernels(self, levels: int) -> int:
        """How many input projections (one per kernel size) a model over ``levels`` needs."""
        return levels if self.patchified else 1

    def token_channels(self, channels: int, levels: int) -> int:
        """Cin, the packed width of a token's values: C, or 4^(L-1) C when patchified."""
        return channels * 4 ** (levels - 1) if self.patchified else channels

    def levels_needed(self, levels: int) -> int:
        """Latent levels a video must hold for this source (of ``levels`` in the hierarchy)."""
        return 1 if self.patchified else levels
