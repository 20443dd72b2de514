"""The packed token batch (``Tokens``) the DiT reads, and the transforms of a whole batch.

Every token carries its latent ``values``, ``level``, patchify ``kernel``, absolute ``frame``,
``row``/``col`` in its own level's grid, the ``action`` and relative camera ``pose`` of its frame
and ``valid`` (False: padding, dropped context) and ``noised`` (conditioning augmentation);
every element its ``origin`` (the first target frame) and ``context_time`` (the time of that
noise). ``millivid.model.packing`` builds them
from a plan step; ``augmented_context`` / ``noise_context`` are the conditioning augmentation
of training and rollouts (``diffusion.context_noise``, ``diffusion.context_noise_scope``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from millivid.diffusion import Schedule

# the tensors of ``Tokens`` (moved, pinned and stacked together)
TENSOR_FIELDS = (
    "values",
    "level",
    "kernel",
    "frame",
    "row",
    "col",
    "action",
    "pose",
    "valid",
    "noised",
    "origin",
    "context_time",
)
NO_ACTION = 3  # action id of padding tokens (actions are 0 forward, 1 left, 2 right)


@dataclass(frozen=True)
class Tokens:
    """A packed batch: per-token tensors of shape [B, S] (``values`` [B, S, Cin]).

    ``context_slots`` tokens come first (context and padding), the rest are targets. Packed with
    ``compact=True``, ``values`` holds only the real channels, flattened in (batch, token,
    channel) order (FramePack's dense values are three quarters zero padding): less to hand over
    between processes and to copy to the GPU; ``dense`` restores [B, S, Cin].
    """

    values: Tensor  # float [B, S, Cin], or 1-D when packed compact
    level: Tensor  # int64 [B, S]
    kernel: Tensor  # int64 [B, S]: patchify level, 0 for hierarchical-level tokens
    frame: Tensor  # int64 [B, S]: absolute frame index
    row: Tensor  # int64 [B, S]: row in the token's own grid
    col: Tensor  # int64 [B, S]
    action: Tensor  # int64 [B, S]: 0..2, NO_ACTION for padding
    pose: Tensor  # float32 [B, S, 3]: the frame's camera relative to the origin frame's
    # (forward, left in blocks; yaw in radians, left +; see ``relative_poses``); 0 when unknown
    valid: Tensor  # bool [B, S]: False for padding and dropped context
    noised: Tensor  # bool [B, S]: context tokens noised to the element's ``context_time``
    origin: Tensor  # int64 [B]: first frame of the target span (positions are relative to it)
    context_time: Tensor  # float32 [B]: diffusion time of the noise on the ``noised`` context
    # tokens (conditioning augmentation), 0 = clean
    context_slots: int
    channels: int  # C; values carry Cin = channels * 4^max_kernel

    @property
    def batch(self) -> int:
        return self.level.shape[0]

    @property
    def length(self) -> int:
        return self.level.shape[1]

    @property
    def target_slots(self) -> int:
        return self.length - self.context_slots

    @property
    def target_values(self) -> Tensor:
        """[B, St, Cin]"""
        return self.values[:, self.context_slots :]

    def channel_mask(self, cin: int | None = None) -> Tensor:
        """bool [B, S, Cin]: which channels of ``values`` are real (4^kernel * C per token);
        ``cin`` defaults to the width of the (dense) values."""
        width = self.channels * 4**self.kernel  # [B, S]
        cin = self.values.shape[-1] if cin is None else cin
        return torch.arange(cin, device=self.kernel.device) < width.unsqueeze(-1)

    def dense(self, cin: int) -> Tokens:
        """``values`` [B, S, cin] with the zero padding, from compact values (as is if dense)."""
        if self.values.dim() == 3:
            return self
        mask = self.channel_mask(cin)
        if self.values.numel() != int(mask.sum()):
            raise ValueError(
                f"compact values: {self.values.numel()} numbers for {int(mask.sum())} real "
                f"channels of [{self.batch}, {self.length}, {cin}]"
            )
        full = self.values.new_zeros(self.batch, self.length, cin)
        return replace(self, values=full.masked_scatter_(mask, self.values))

    def with_targets(self, values: Tensor) -> Tokens:
        """The same tokens with target values replaced by ``values`` [B, St, Cin]."""
        expected = (self.batch, self.target_slots, self.values.shape[-1])
        if tuple(values.shape) != expected:
            raise ValueError(f"target values: expected {expected}, got {tuple(values.shape)}")
        ctx = self.values[:, : self.context_slots].to(values.dtype)
        return replace(self, values=torch.cat([ctx, values], dim=1))

    def drop_context(self, drop: Tensor) -> Tokens:
        """Mark every context token of the batch elements where ``drop`` [B] is True invalid
        (classifier-free guidance, paper A.2): the model sees null tokens there."""
        is_ctx = torch.arange(self.length, device=self.valid.device) < self.context_slots
        valid = self.valid & ~(drop.to(self.valid.device).view(-1, 1) & is_ctx)
        return replace(self, valid=valid)

    def _map(self, fn) -> Tokens:
        return replace(self, **{f: fn(getattr(self, f)) for f in TENSOR_FIELDS})

    def to(self, device: torch.device | str) -> Tokens:
        """On ``device``; asynchronous from page-locked memory (see ``pin_memory``)."""
        return self._map(lambda x: x.to(device, non_blocking=True))

    def pin_memory(self) -> Tokens:
        return self._map(lambda x: x.pin_memory())

    @staticmethod
    def cat(parts: Sequence[Tokens]) -> Tokens:
        """Stack packed batches along the batch axis; their layouts must agree (compact values
        concatenate in the same sample-major order)."""

        def layout(t: Tokens) -> tuple:
            width = t.values.shape[-1] if t.values.dim() == 3 else "compact"
            return (t.length, t.context_slots, width, t.channels)

        first = parts[0]
        for p in parts[1:]:
            if layout(p) != layout(first):
                raise ValueError(
                    "cannot batch steps with different layouts: (S, context slots, Cin, C) "
                    f"{layout(first)} vs {layout(p)}"
                )
        stacked = {f: torch.cat([getattr(p, f) for p in parts]) for f in TENSOR_FIELDS}
        return replace(first, **stacked)


def coarse_context(tokens: Tokens) -> Tensor:
    """bool [B, S]: the context tokens at a hierarchical level coarser than the step's target
    (in a coarse-to-fine rollout, the generated coarse version of the target and the future):
    what conditioning augmentation noises by default (``augmented_context``)."""
    target_level = tokens.level[:, tokens.context_slots : tokens.context_slots + 1]
    is_context = torch.arange(tokens.length, device=tokens.level.device) < tokens.context_slots
    return is_context & (tokens.kernel == 0) & (tokens.level > target_level)


CONTEXT_NOISE_SCOPES = ("coarse", "all")  # diffusion.context_noise_scope


def check_context_noise_scope(scope: str) -> None:
    """Error naming the setting unless ``scope`` is one of ``CONTEXT_NOISE_SCOPES``."""
    if scope not in CONTEXT_NOISE_SCOPES:
        raise ValueError(
            f"diffusion.context_noise_scope = {scope!r}: use {' or '.join(CONTEXT_NOISE_SCOPES)}"
        )


def augmented_context(tokens: Tokens, scope: str) -> Tensor:
    """bool [B, S]: the context tokens conditioning augmentation noises. ``coarse``: those
    coarser than the target (``coarse_context``: in a coarse-to-fine rollout, the generated
    coarse version of the target and the future); ``all``: every context token (a rollout's
    recent frames are generated too: what autoregressive models noise to resist drift)."""
    check_context_noise_scope(scope)
    if scope == "coarse":
        return coarse_context(tokens)
    is_context = torch.arange(tokens.length, device=tokens.level.device) < tokens.context_slots
    return is_context.expand(tokens.batch, -1)


def noise_context(
    tokens: Tokens, time: Tensor, noise: Tensor, schedule: Schedule, scope: str = "coarse"
) -> Tokens:
    """``tokens`` with their ``augmented_context(tokens, scope)`` values noised to diffusion time
    ``time`` float [B] — ``alpha x + sigma noise`` on ``schedule``, ``noise`` a standard normal
    of the shape of ``tokens.values`` (dense [B, S, Cin] or compact) — and ``noised`` and
    ``context_time`` set (conditioning augmentation; the model is told which tokens and the
    time). Time 0 leaves an element as it is (the schedule's sigma at t = 0 is small, not
    zero)."""
    if not bool(((time >= 0) & (time <= 1)).all()):
        raise ValueError(f"context noise times must lie in [0, 1], got {time.tolist()}")
    if noise.shape != tokens.values.shape:
        raise ValueError(f"noise {tuple(noise.shape)} != values {tuple(tokens.values.shape)}")
    dev = tokens.level.device
    noised = augmented_context(tokens, scope) & (time > 0).to(dev).unsqueeze(1)  # [B, S]
    a, s = (c.float().to(dev).view(-1, 1, 1) for c in schedule.alpha_sigma(time.float()))
    x = tokens.values.float()
    if x.dim() == 3:  # dense: padding channels stay zero
        mask = tokens.channel_mask()
        noisy = a * x + s * noise.to(x) * mask
        values = torch.where(noised.unsqueeze(-1), noisy, x)
    else:  # compact: the real channels in (batch, token, channel) order
        mask = tokens.channel_mask(tokens.channels * 4 ** int(tokens.kernel.max()))
        pick = noised.unsqueeze(-1).expand(mask.shape)[mask]
        noisy = a.expand(mask.shape)[mask] * x + s.expand(mask.shape)[mask] * noise.to(x)
        values = torch.where(pick, noisy, x)
    return replace(
        tokens,
        values=values.to(tokens.values.dtype),
        noised=noised,
        context_time=time.to(tokens.context_time),
    )
