"""The video model's training task for the shared trainer (paper §3.2, A.2).

One code path for every method: a batch element is a random video from the latent source, a
random training step of the method's plan (``sample_training_step``), packed with ground-truth
context and clean targets; ``loss`` noises the targets at a random continuous time, predicts v and
takes the MSE over real target channels only. With probability ``diffusion.context_dropout`` all
context tokens of an element are dropped (masked out) for classifier-free guidance.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor
from tqdm import tqdm

from millivid.diffusion import diffuse, sample_time, v_from_x0_eps
from millivid.model.dit import VideoDiT
from millivid.model.packing import pack
from millivid.model.tokens import Tokens, check_context_noise_scope, noise_context
from millivid.plan import METHODS, context_source, sample_training_step, step_kinds
from millivid.presets import Config


class LatentSource(Protocol):
    """Anything like ``millivid.data.latent_cache.LatentCache``; ``autoencoder_digest`` and
    ``autoencoder_kind``: the weight digest and kind (``ae.kind``) of the autoencoder the latents
    came from, or None when unknown."""

    autoencoder_digest: str | None
    autoencoder_kind: str | None

    def __len__(self) -> int: ...

    def load(self, i: int) -> tuple[list[Tensor], Tensor]:
        """(levels: list over levels of float [T, h_l, w_l, C], actions int64 [T])."""
        ...

    def load_poses(self, i: int) -> Tensor:
        """Camera poses float [T, 5] (x, y, z, yaw°, pitch°) of video ``i`` (pose-conditioned
        models only); a clear error when the source has none."""
        ...


class InMemoryLatents:
    """A latent source held in memory (tests, small experiments); ``poses``: one float [T, 5]
    per video, or None."""

    autoencoder_digest = None
    autoencoder_kind = None

    def __init__(
        self,
        videos: Sequence[tuple[Sequence[Tensor], Tensor]],
        poses: Sequence[Tensor] | None = None,
    ) -> None:
        if not videos:
            raise ValueError("InMemoryLatents needs at least one video")
        self.videos = [(list(levels), actions) for levels, actions in videos]
        self.poses = list(poses) if poses is not None else None

    def __len__(self) -> int:
        return len(self.videos)

    def load(self, i: int) -> tuple[list[Tensor], Tensor]:
        return self.videos[i]

    def load_poses(self, i: int) -> Tensor:
        if self.poses is None:
            raise ValueError("these in-memory latents have no poses (pass poses=...)")
        return self.poses[i]


def build_video_model(config: Config, method: str) -> VideoDiT:
    """The DiT for ``method`` at ``config``'s sizes (patchify methods get one input/output
    projection per kernel size)."""
    if config.plan.memory_frames and not config.model.uses_poses:
        raise ValueError(
            f"plan.memory_frames = {config.plan.memory_frames}: memory frames are retrieved by "
            "camera pose; set model.condition=poses or model.condition=both"
        )
    levels = len(config.plan.tokens)
    kernels = context_source(method).input_kernels(levels)
    return VideoDiT(config.model, config.ae.channels, levels, kernels)


def sequence_length(config: Config, method: str) -> int:
    """The fixed token count S of every step of ``method``."""
    return step_kinds(method, config.plan)[0].step.sequence_tokens


@dataclass
class VideoBatch:
    """A training batch on the CPU: packed tokens with clean targets (bf16 values), times,
    noise, drops."""

    tokens: Tokens  # FramePack's values compact (1-D) until ``to``
    t: Tensor  # float32 [B]
    noise: Tensor  # float32 [B, N]: each element's real target channels, then unused (``target_noise``)
    dropped: Tensor  # bool [B]
    cin: int  # value channels of the dense tokens

    def to(self, device: torch.device | str) -> VideoBatch:
        """On ``device`` with dense token values (asynchronous from pinned memory)."""
        t, noise = (x.to(device, non_blocking=True) for x in (self.t, self.noise))
        return replace(self, tokens=self.tokens.to(device).dense(self.cin), t=t, noise=noise)

    def pin_memory(self) -> VideoBatch:
        """Page-locked copy (the DataLoader calls this with ``pin_memory=True``): the copy to the
        GPU then runs asynchronously and at full bus speed."""
        return replace(
            self,
            tokens=self.tokens.pin_memory(),
            t=self.t.pin_memory(),
            noise=self.noise.pin_memory(),
        )


def target_noise(noise: Tensor, mask: Tensor) -> Tensor:
    """[B, St, Cin] noise for the target tokens, zero where ``mask`` [B, St, Cin] (their real
    channels) is False, from ``noise`` [B, N] holding each element's real channels in (token,
    channel) order first (a gather, so no device sync)."""
    real = mask.flatten(1)
    rank = (real.cumsum(1) - 1).clamp_(min=0)  # index of each real channel's number in noise
    return (noise.gather(1, rank) * real).view(mask.shape)


def check_latent_kind(method: str, source: LatentSource) -> None:
    """Refuse latents of another autoencoder kind than the method's own where the method needs
    its own (``cascaded``: mean-pooled levels, of a single-level autoencoder or of a hierarchical
    one's level 0, ``pooled``; trained over a hierarchical autoencoder's learned levels it would
    be another model under its name). A method of the hierarchical kind may train over any
    (``cascaded-framepack``)."""
    needed = METHODS[method].ae
    found = source.autoencoder_kind
    same = {"cascaded": ("cascaded", "pooled")}.get(needed, (needed,))
    if needed != "hierarchical" and found is not None and found not in same:
        raise ValueError(
            f"{getattr(source, 'root', 'the latent source')}: latents of a {found} autoencoder, "
            f"but method {method} is trained over a {needed} autoencoder's: encode the videos "
            f"with one (millivid ae train --set ae.kind={needed}, then ae encode)"
        )


class VideoTask:
    """``TrainTask`` of the video model for one method (see millivid/train)."""

    items_name = "tokens"

    def __init__(self, config: Config, method: str, source: LatentSource) -> None:
        self.config, self.method, self.source = config, method, source
        self.context_source = context_source(method)
        self.levels = len(config.plan.tokens)
        # targets trained on and thrown away at sampling (mirrored FramePack): the loss also
        # reports the kept targets' own
        self.discards = any(k.step.discarded for k in step_kinds(method, config.plan))
        self.batch_size = config.video_train.batch_size
        self.items_per_batch = self.batch_size * sequence_length(config, method)
        if len(source) == 0:
            raise ValueError("the latent source holds no videos")
        check_latent_kind(method, source)
        if not 0.0 <= config.diffusion.context_noise <= 1.0:
            raise ValueError(
                f"diffusion.context_noise = {config.diffusion.context_noise}: the largest "
                "diffusion time of the coarse context's noise, in [0, 1] (0 = off)"
            )
        check_context_noise_scope(config.diffusion.context_noise_scope)
        # every video now, checked, before DataLoader workers fork: they then share this one
        # copy, where loading on first use gives each worker its own (12 workers x 2,048 mini
        # videos of 5.6 MB = 140 GB)
        for i in tqdm(range(len(source)), desc="latents into memory", unit="video", disable=None):
            self._video(i)

    def build_model(self) -> VideoDiT:
        return build_video_model(self.config, self.method)

    def _video(self, i: int) -> tuple[list[Tensor], Tensor, Tensor | None]:
        """(levels, actions, poses or None) of video ``i``, checked against the config."""
        levels, actions = self.source.load(i)
        need = self.context_source.levels_needed(self.levels)
        if len(levels) < need:
            raise ValueError(f"latent video {i}: {len(levels)} levels, {self.method} needs {need}")
        channels = levels[0].shape[-1]
        if channels != self.config.ae.channels:
            raise ValueError(
                f"latent video {i} has {channels} channels but ae.channels = "
                f"{self.config.ae.channels}: train with the autoencoder config the latents were "
                f"encoded with (--set ae.channels={channels})"
            )
        poses = self.source.load_poses(i) if self.config.model.uses_poses else None
        return levels, actions, poses

    def batch(self, step: int, generator: torch.Generator) -> VideoBatch:
        """A batch drawn only from ``generator`` (so resuming at ``step`` is exact)."""
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
        parts = []
        for _ in range(self.batch_size):
            levels, actions, poses = self._video(rng.randrange(len(self.source)))
            plan_step = sample_training_step(self.method, self.config.plan, levels[0].shape[0], rng)
            # bf16 latents: half the bytes to build, hand over from workers and copy to the GPU
            # (FramePack's are padded to 4^(L-1) C channels); the model runs in bf16 anyway
            parts.append(
                pack(
                    [lat[None] for lat in levels],
                    actions[None],
                    plan_step,
                    self.context_source,
                    self.levels,
                    dtype=torch.bfloat16,
                    compact=self.context_source.patchified,  # ~3/4 of its values: padding
                    poses=None if poses is None else poses[None],
                )
            )
        tokens = Tokens.cat(parts)
        b = tokens.batch
        limit = self.config.diffusion.context_noise
        if limit:  # conditioning augmentation
            diffusion = self.config.diffusion
            time = torch.rand(b, generator=generator) * limit
            noise = torch.randn(*tokens.values.shape, generator=generator)
            tokens = noise_context(
                tokens, time, noise, diffusion.schedule, diffusion.context_noise_scope
            )
        t = sample_time(b, generator)
        # noise only for the channels targets really use (FramePack pads level-0 targets from C
        # to 4^(L-1) C channels, mirrored FramePack's coarse targets are patchified: drawing and
        # moving the padding took most of their batch time); ``loss`` spreads it on the device
        per_element = (tokens.channels * 4 ** tokens.kernel[:, tokens.context_slots :]).sum(1)
        noise = torch.randn(b, int(per_element.max()), generator=generator)
        # paper A.2: drop all context tokens of an element w.p. context_dropout (for CFG)
        dropped = torch.rand(b, generator=generator) < self.config.diffusion.context_dropout
        cin = self.context_source.token_channels(tokens.channels, self.levels)
        return VideoBatch(tokens.drop_context(dropped), t, noise, dropped, cin)

    def loss(
        self, model: torch.nn.Module, batch: VideoBatch, device: torch.device | str
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """v-prediction MSE over the real channels of the target tokens, per value or per token
        (``diffusion.loss_unit``); with discarded targets also ``kept_loss``, the kept targets'
        MSE per value (comparable across units)."""
        dropped = batch.dropped.float().mean()  # before the copy: no GPU sync to log it
        batch = batch.to(device)
        tokens, t, noise = batch.tokens, batch.t, batch.noise
        x0 = tokens.target_values.float()
        level = tokens.level[:, tokens.context_slots]  # the step's target span comes first
        a, s = self.config.diffusion.target_alpha_sigma(t, level)
        a, s = a.view(-1, 1, 1), s.view(-1, 1, 1)
        real = tokens.channel_mask()[:, tokens.context_slots :]
        noise = target_noise(noise, real)
        mask = real.float()
        z = diffuse(x0, noise, a, s)
        v = v_from_x0_eps(x0, noise, a, s)
        pred = model(tokens.with_targets(z), t)
        error = ((pred.float() - v) ** 2 * mask).sum(-1)  # [B, targets]: summed over channels
        values = mask.sum(-1)  # real values per target token
        if self.config.diffusion.loss_unit == "token":
            loss = (error / values.clamp(min=1)).sum() / (values > 0).sum()
        else:
            loss = error.sum() / values.sum()
        metrics = {"context_dropped": dropped}
        if self.discards:  # discarded spans are coarser than the kept target's level
            kept = tokens.level[:, tokens.context_slots :] == level.unsqueeze(1)
            metrics["kept_loss"] = ((error * kept).sum() / (values * kept).sum()).detach()
        return loss, metrics
