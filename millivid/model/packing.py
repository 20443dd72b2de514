"""Pack one plan step of a batch of videos into the DiT's fixed-length token sequence, and back.

Sequence layout (the same for every step of one method, so steps stack into batches and shapes
are static for torch.compile)::

    [ context tokens (step.context, in order) | memory | padding (step.missing_tokens) | targets ]
      <--------------------------- context_slots -------------------------->           <- St ->

Targets are ``step.target`` then ``step.discarded``. Inside a span tokens are frame-major, then
row, then column. Padding tokens are ``valid = False``: the model gives them its learned null token.

Every token carries: its latent ``values`` (Cin channels), ``level``, ``kernel``, absolute
``frame``, ``row``/``col`` in its own level's grid, the ``action`` of its frame (``NO_ACTION`` for
padding) and ``valid``. The model turns (frame - origin, row, col, level) into positions.

Memory (``Step.memory``): M frames per video at the memory level, chosen per video
(``millivid.model.memory``), so their ``frame`` differs across the batch; a slot without a frame
(-1) is padding.

Context sources (``millivid.plan.ContextSource``; a name such as ``"levels"`` works too):

* ``"levels"``: a span at level l reads hierarchical level l: C channels per token, kernel 0.
* ``"patchify"`` (FramePack): a span at level l is level-0 latents patchified with a
  2^l x 2^l kernel: ``4^l * C`` raw values per token, kernel l. Values are packed zero-padded to
  ``Cin = 4^(L-1) * C`` and the model applies the learned input projection of the token's kernel
  (one ``nn.Linear`` per kernel size) to the first ``4^kernel * C`` channels. Discarded targets of
  mirrored FramePack are patchified the same way and the model predicts all their raw values.
  Tensors handed to ``pack_spans`` for patchify spans (and returned by ``unpack_targets``) are
  level-0 latents ``[B, frames, h0, w0, C]``; the patchifying happens here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor

from millivid.model.memory import gather_frames, select_memory
from millivid.model.tokens import NO_ACTION, Tokens
from millivid.plan.sources import ContextSource
from millivid.plan.step import Span, Step


def patchify(x: Tensor, kernel: int) -> Tensor:
    """[B, F, H, W, C] -> [B, F, H/k, W/k, k*k*C] (row-major inside a patch, then channels)."""
    if x.shape[2] % kernel or x.shape[3] % kernel:
        raise ValueError(f"patchify: grid {tuple(x.shape[2:4])} not divisible by {kernel}")
    return rearrange(x, "b f (h p) (w q) c -> b f h w (p q c)", p=kernel, q=kernel)


def unpatchify(x: Tensor, kernel: int) -> Tensor:
    """Inverse of ``patchify``: [B, F, h, w, k*k*C] -> [B, F, h*k, w*k, C]."""
    return rearrange(x, "b f h w (p q c) -> b f (h p) (w q) c", p=kernel, q=kernel)


def relative_poses(poses: Tensor, origin: int) -> Tensor:
    """Camera poses relative to frame ``origin``'s: poses float [B, T, >=4] (x, y, z, yaw° as in
    the data format) -> float32 [B, T, 3] = (forward, left) displacement in blocks in the
    origin camera's frame, and the yaw change in radians (left +). Invariant to moving and
    turning the whole trajectory, so the model sees where each frame's camera is, not where the
    world's origin lies."""
    xy, yaw = poses[..., :2].double(), torch.deg2rad(poses[..., 3].double())
    d = xy - xy[:, origin : origin + 1]
    c, s = yaw[:, origin : origin + 1].cos(), yaw[:, origin : origin + 1].sin()
    forward = d[..., 0] * c + d[..., 1] * s
    left = -d[..., 0] * s + d[..., 1] * c
    return torch.stack([forward, left, yaw - yaw[:, origin : origin + 1]], -1).float()


def _span_tokens(
    x: Tensor, span: Span, kernel: int, actions: Tensor, poses: Tensor | None
) -> dict[str, Tensor]:
    """Tokens of one span from ``x`` [B, frames, h, w, c] (already patchified); poses: relative
    poses [B, T, 3] or None."""
    b, f, h, w, c = x.shape
    dev = x.device
    values = x.reshape(b, f * h * w, c)  # zero-padded to Cin when merged (``_merge_values``)
    frame = torch.arange(span.start, span.stop, device=dev).repeat_interleave(h * w)
    row = torch.arange(h, device=dev).repeat_interleave(w).repeat(f)
    col = torch.arange(w, device=dev).repeat(f * h)
    n = f * h * w
    return {
        "values": values,
        "level": torch.full((b, n), span.level, device=dev),
        "kernel": torch.full((b, n), kernel, device=dev),
        "frame": frame.expand(b, n),
        "row": row.expand(b, n),
        "col": col.expand(b, n),
        "action": actions[:, frame],
        "pose": poses[:, frame] if poses is not None else torch.zeros(b, n, 3, device=dev),
        "valid": torch.ones(b, n, dtype=torch.bool, device=dev),
    }


def _memory_tokens(
    x: Tensor, frames: Tensor, level: int, kernel: int, actions: Tensor, poses: Tensor | None
) -> dict[str, Tensor]:
    """Tokens of the memory frames ``frames`` int64 [B, M] (-1: none) from ``x`` [B, M, h, w, c]
    (already patchified); actions [B, T]; poses: relative poses [B, T, 3] or None."""
    b, m, h, w, c = x.shape
    dev = x.device
    frames = frames.to(dev)
    frame = frames.repeat_interleave(h * w, dim=1)  # [B, n]
    valid = frame >= 0
    index = frame.clamp(0)
    n = m * h * w
    pose = (
        torch.gather(poses, 1, index[..., None].expand(b, n, poses.shape[-1])) * valid[..., None]
        if poses is not None
        else torch.zeros(b, n, 3, device=dev)
    )
    return {
        "values": x.reshape(b, n, c),
        "level": torch.full((b, n), level, device=dev),
        "kernel": torch.full((b, n), kernel, device=dev),
        "frame": torch.where(valid, frame, 0),
        "row": torch.arange(h, device=dev).repeat_interleave(w).repeat(m).expand(b, n),
        "col": torch.arange(w, device=dev).repeat(m * h).expand(b, n),
        "action": torch.where(valid, torch.gather(actions, 1, index), NO_ACTION),
        "pose": pose,
        "valid": valid,
    }


def _padding(b: int, n: int, origin: int, like: Tensor) -> dict[str, Tensor]:
    dev = like.device
    zeros = torch.zeros(b, n, dtype=torch.long, device=dev)
    return {
        "values": torch.zeros(b, n, 0, dtype=like.dtype, device=dev),  # all zeros once merged
        "level": zeros,
        "kernel": zeros,
        "frame": zeros + origin,
        "row": zeros,
        "col": zeros,
        "action": zeros + NO_ACTION,
        "pose": torch.zeros(b, n, 3, device=dev),
        "valid": torch.zeros(b, n, dtype=torch.bool, device=dev),
    }


def _merge_values(
    parts: Sequence[Tensor], cin: int, dtype: torch.dtype | None, compact: int = 0
) -> Tensor:
    """[B, S, Cin] of the spans' values [B, n, c <= Cin], zero-padded: written once into one
    buffer (FramePack's batches are mostly padding; padding then concatenating copied it twice).
    ``compact`` = C: only the ``channel_mask`` channels, 1-D in (batch, token, channel) order
    (a padding token, kernel 0, has C zeros)."""
    first = parts[0]
    b, total = first.shape[0], sum(v.shape[1] for v in parts)
    if compact:
        flat = [v if v.shape[-1] else v.new_zeros(b, v.shape[1], compact) for v in parts]
        return (
            torch.cat([v.reshape(b, -1) for v in flat], dim=1).reshape(-1).to(dtype or first.dtype)
        )
    out = torch.zeros(b, total, cin, dtype=dtype or first.dtype, device=first.device)
    pos = 0
    for v in parts:
        out[:, pos : pos + v.shape[1], : v.shape[-1]] = v
        pos += v.shape[1]
    return out


def _check_span(x: Tensor, span: Span, what: str) -> None:
    if x.dim() != 5 or x.shape[1] != span.frames:
        raise ValueError(
            f"{what} {span}: expected latents [B, {span.frames}, h, w, C], got {tuple(x.shape)}"
        )


def pack_spans(
    step: Step,
    context: Sequence[Tensor],
    targets: Sequence[Tensor],
    actions: Tensor,
    source: ContextSource | str,
    levels: int,
    dtype: torch.dtype | None = None,
    compact: bool = False,
    poses: Tensor | None = None,
    memory: tuple[Tensor, Tensor] | None = None,
) -> Tokens:
    """Pack one step from its spans' latents.

    context: one ``[B, frames, h, w, C]`` per ``step.context`` span (level-0 latents for
    patchify sources); targets: one per span of ``(step.target, *step.discarded)`` (clean latents
    for training, noise for sampling); actions: int64 [B, T] with T > every frame of the step;
    levels: L, the number of latent levels (sets Cin for patchify sources); dtype: of the
    packed values (default: the latents'); compact: values without padding (see ``Tokens``);
    poses: float [B, T, 5] camera poses of the data format (x, y, z, yaw°, pitch°), packed
    relative to the target's first frame (``relative_poses``), or None (zeros); memory: for a
    step with ``memory``, (latents [B, M, h, w, C] of the memory level, or level 0 for patchify
    sources; frames int64 [B, M], -1 where none), see ``millivid.model.memory``.
    """
    target_spans = (step.target, *step.discarded)
    _check_inputs(step, context, targets, actions, poses, memory)
    if poses is not None:
        poses = relative_poses(poses, step.target.start)
    source = ContextSource(source)
    channels = (context[0] if context else targets[0]).shape[-1]

    def span_tokens(x: Tensor, span: Span, what: str) -> dict[str, Tensor]:
        _check_span(x, span, what)
        kernel = source.kernel(span.level)
        if kernel:
            x = patchify(x, 2**kernel)
        rel = poses.to(x.device) if poses is not None else None
        return _span_tokens(x, span, kernel, actions.to(x.device), rel)

    parts = [span_tokens(x, span, "context") for span, x in zip(step.context, context, strict=True)]
    present = sum(p["values"].shape[1] for p in parts)
    if present != step.context_tokens:
        raise ValueError(f"context latents give {present} tokens, step says {step.context_tokens}")
    if memory is not None:
        parts.append(_step_memory_tokens(step, memory, source, actions, poses))
        present += step.memory.tokens
    if step.missing_tokens:
        like = targets[0]
        parts.append(_padding(like.shape[0], step.missing_tokens, step.target.start, like))
    context_slots = present + step.missing_tokens
    parts += [span_tokens(x, span, "target") for span, x in zip(target_spans, targets, strict=True)]
    merged = {k: torch.cat([p[k] for p in parts], dim=1) for k in parts[0] if k != "values"}
    values = [p["values"] for p in parts]
    cin = source.token_channels(channels, levels)
    merged["values"] = _merge_values(values, cin, dtype, channels if compact else 0)
    b, length = merged["level"].shape
    if length - context_slots != step.target_tokens:
        raise ValueError(
            f"target latents give {length - context_slots} tokens, step says {step.target_tokens}"
        )
    return Tokens(
        **merged,
        origin=torch.full((b,), step.target.start, device=merged["level"].device),
        noised=torch.zeros(b, length, dtype=torch.bool, device=merged["level"].device),
        context_time=torch.zeros(b, device=merged["level"].device),
        context_slots=context_slots,
        channels=channels,
    )


def _check_inputs(
    step: Step,
    context: Sequence[Tensor],
    targets: Sequence[Tensor],
    actions: Tensor,
    poses: Tensor | None,
    memory: tuple[Tensor, Tensor] | None,
) -> None:
    """``pack_spans``' errors for inputs that do not match the step (each span's own shape is
    checked as it is packed)."""
    if len(context) != len(step.context):
        raise ValueError(f"step has {len(step.context)} context spans, got {len(context)} tensors")
    spans = 1 + len(step.discarded)
    if len(targets) != spans:
        raise ValueError(f"step has {spans} target spans, got {len(targets)} tensors")
    if actions.dim() != 2 or actions.shape[1] < step.last_frame:
        raise ValueError(
            f"actions: expected int64 [B, T] with T >= {step.last_frame}, got {tuple(actions.shape)}"
        )
    if poses is not None and (
        poses.dim() != 3 or poses.shape[1] < step.last_frame or poses.shape[2] < 4
    ):
        raise ValueError(
            f"poses: expected float [B, T, 5] with T >= {step.last_frame}, got {tuple(poses.shape)}"
        )
    if (memory is None) != (step.memory is None):
        raise ValueError(
            f"step memory {step.memory}: memory latents "
            f"{'missing' if memory is None else 'given to a step without memory'}"
        )
    if memory is not None:
        x, frames = memory
        if x.dim() != 5 or frames.shape != (x.shape[0], step.memory.frames):
            raise ValueError(
                f"memory: expected latents [B, {step.memory.frames}, h, w, C] and frames "
                f"[B, {step.memory.frames}], got {tuple(x.shape)}, {tuple(frames.shape)}"
            )


def _step_memory_tokens(
    step: Step,
    memory: tuple[Tensor, Tensor],
    source: ContextSource,
    actions: Tensor,
    poses: Tensor | None,
) -> dict[str, Tensor]:
    """The tokens of a step's memory frames (``memory``: latents, frames; checked)."""
    x, frames = memory
    kernel = source.kernel(step.memory.level)
    if kernel:
        x = patchify(x, 2**kernel)
    rel = poses.to(x.device) if poses is not None else None
    return _memory_tokens(x, frames, step.memory.level, kernel, actions.to(x.device), rel)


def _read(levels: Sequence[Tensor], span: Span, source: ContextSource) -> Tensor:
    lat = levels[source.stored_level(span.level)]
    if span.start < 0 or span.stop > lat.shape[1]:
        raise ValueError(f"{span} lies outside the video's {lat.shape[1]} frames")
    return lat[:, span.start : span.stop]


def pack(
    levels: Sequence[Tensor],
    actions: Tensor,
    step: Step,
    source: ContextSource | str,
    num_levels: int | None = None,
    dtype: torch.dtype | None = None,
    compact: bool = False,
    poses: Tensor | None = None,
) -> Tokens:
    """Pack ``step`` from whole videos: levels = list over levels of [B, T, h_l, w_l, C]
    (patchify sources read level 0 only), actions int64 [B, T], poses float [B, T, 5] or None.
    Targets get the clean latents. ``num_levels`` defaults to ``len(levels)``; ``compact``: see
    ``Tokens``. A step with memory retrieves its frames by ``poses`` (required then)."""
    source = ContextSource(source)
    context = [_read(levels, s, source) for s in step.context]
    targets = [_read(levels, s, source) for s in (step.target, *step.discarded)]
    n = num_levels or len(levels)
    memory = None
    if step.memory is not None:
        if poses is None:
            raise ValueError("a step with memory frames needs the videos' camera poses")
        frames = select_memory(poses, step)
        lat = levels[source.stored_level(step.memory.level)]
        memory = (gather_frames(lat, frames), frames)
    return pack_spans(step, context, targets, actions, source, n, dtype, compact, poses, memory)


def unpack_targets(
    values: Tensor,
    step: Step,
    source: ContextSource | str,
    shapes: Sequence[tuple[int, int]],
    channels: int,
) -> list[Tensor]:
    """Split target token values [B, St, Cin] back into one latent tensor per target span
    ``(step.target, *step.discarded)``: [B, frames, h_l, w_l, C] (level-0 latents for patchify
    spans). ``shapes``: (h_l, w_l) of every level."""
    out = []
    offset = 0
    b = values.shape[0]
    for span in (step.target, *step.discarded):
        kernel = ContextSource(source).kernel(span.level)
        h, w = shapes[span.level]
        width = channels * 4**kernel
        n = span.frames * h * w
        chunk = values[:, offset : offset + n, :width].reshape(b, span.frames, h, w, width)
        out.append(unpatchify(chunk, 2**kernel) if kernel else chunk)
        offset += n
    if offset != values.shape[1]:
        raise ValueError(f"step {step.to_json()} has {offset} target tokens, got {values.shape[1]}")
    return out
