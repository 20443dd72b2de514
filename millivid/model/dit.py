"""The video DiT over one plan step's packed tokens (paper §3.2, A.2), with context K/V reuse.

Every token gets: its learned input projection (one per patchify kernel size), a 3D sin/cos
position of (frame - target start, row, col) with rows/cols in level-0 coordinates — a level-l
token sits at the centre of the 2^l x 2^l block of level-0 cells it covers
(``millivid.nn.block_centre``) —, a learned level embedding and the frame's condition: a learned action
embedding (forward/left/right + none) and/or an embedding of the frame's camera pose relative to
the first target frame (``DiTConfig.condition``); with ``DiTConfig.pose_rope`` the pose also
rotates 32 dims of every query and key (``embed.rotate``). Each block is adaLN-Zero (DiT) with *per-token* modulation from
(diffusion time, level): context tokens are clean and use t = 0, targets use their element's t,
and the context tokens that conditioning augmentation noised (``Tokens.noised``; by default
those coarser than the target, ``diffusion.context_noise``) use the element's
``Tokens.context_time``; with ``DiTConfig.action_adaln`` the token's action joins the condition.
There are only 3L distinct conditions per batch element (3L x 4 with the actions), so the
modulation is computed on a [B, 3L, D] table ([B, 3L x 4, D]) and gathered per token.

Padding (context cut at frame 0) and context dropped for classifier-free guidance are not
masked: their input embedding is a learned null token (positions, level and action embeddings are
still added). No attention mask ever exists, so SDPA always runs a fused flash-style kernel on
GPU (cuDNN's on Hopper with torch 2.11; ``millivid --sdpa`` pins another) and every batch has
the same static graph.

Attention (``DiTConfig.attention``):
* ``full``: one SDPA over the sequence.
* ``context-causal``: context queries see context keys only, target queries see everything. Run
  as two SDPA calls (no S x S mask). The context path then never depends on the targets, so
  ``encode_context`` computes every block's context K/V once and ``forward_targets`` runs only
  the target tokens through the blocks against that cache (the rollout engine's fast path).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from millivid.model.config import DiTConfig
from millivid.model.embed import (
    POSE_ROPE_DIMS,
    PoseEmbedder,
    TimestepEmbedder,
    pose_angles,
    position_3d,
    rotate,
)
from millivid.model.tokens import NO_ACTION, Tokens
from millivid.nn import block_centre, modulate


def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """SDPA of q [B, H, n, d] over k, v [B, H, m, d] (never masked: a fused kernel on GPU)."""
    return F.scaled_dot_product_attention(q, k, v)


def gather_rows(table: Tensor, index: Tensor) -> Tensor:
    """table [B, J, E], index int64 [B, n] -> [B, n, E]."""
    return torch.gather(table, 1, index.unsqueeze(-1).expand(-1, -1, table.shape[-1]))


def _rms(norm: nn.Module, x: Tensor) -> Tensor:
    """RMSNorm with its weight in x's dtype (keeps the fused kernel under bf16 autocast)."""
    if isinstance(norm, nn.RMSNorm):
        return F.rms_norm(x, norm.normalized_shape, norm.weight.to(x.dtype), norm.eps)
    return x


class Block(nn.Module):
    """adaLN-Zero transformer block; attention is done by the caller between the two halves."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.width
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(d, 3 * d)
        head_dim = d // cfg.heads
        self.q_norm = nn.RMSNorm(head_dim, eps=1e-6) if cfg.qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(head_dim, eps=1e-6) if cfg.qk_norm else nn.Identity()
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d)
        )
        self.ada = nn.Linear(d, 6 * d)  # zero-initialised by the model

    def modulation(self, cond: Tensor, cond_id: Tensor) -> Tensor:
        """Per-token modulation [B, n, 6D] from the SiLU'd condition table [B, J, D]."""
        return gather_rows(self.ada(cond), cond_id)

    def project(
        self, x: Tensor, mod: Tensor, angles: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v [B, H, n, d] of tokens x [B, n, D]; ``angles`` [B, n, A]: pose rotary angles
        of the tokens (``model.pose_rope``), or None."""
        shift, scale = mod.chunk(6, dim=-1)[:2]
        qkv = self.qkv(modulate(self.norm1(x), shift, scale))
        q, k, v = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=self.heads)
        q, k = _rms(self.q_norm, q), _rms(self.k_norm, k)
        if angles is not None:
            q, k = rotate(q, angles), rotate(k, angles)
        return q, k, v

    def finish(self, x: Tensor, attn: Tensor, mod: Tensor) -> Tensor:
        """Residual attention output and MLP: x [B, n, D], attn [B, H, n, d]."""
        gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)[2:]
        x = x + gate1 * self.proj(rearrange(attn, "b h n d -> b n (h d)"))
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))

    def forward(
        self,
        x: Tensor,
        cond: Tensor,
        cond_id: Tensor,
        ctx_slots: int,
        causal: bool,
        angles: Tensor | None = None,
    ) -> Tensor:
        """The whole sequence x [B, S, D] through the block (joint path)."""
        mod = self.modulation(cond, cond_id)
        q, k, v = self.project(x, mod, angles)
        if not causal:
            out = attend(q, k, v)
        else:
            target = attend(q[:, :, ctx_slots:], k, v)
            if ctx_slots:
                c = slice(0, ctx_slots)
                context = attend(q[:, :, c], k[:, :, c], v[:, :, c])
                out = torch.cat([context, target], dim=2)
            else:
                out = target
        return self.finish(x, out, mod)


@dataclass
class ContextCache:
    """Every block's context keys/values [B, H, Sc, d]."""

    keys: list[Tensor]
    values: list[Tensor]


class VideoDiT(nn.Module):
    """DiT with v-prediction over packed tokens; see the module docstring.

    channels: C latent channels; levels: L latent levels (level embedding size);
    kernels: patchify kernel sizes with their own input/output projections (1 for hierarchical
    sources, L for FramePack's patchify source).
    """

    def __init__(self, cfg: DiTConfig, channels: int, levels: int, kernels: int = 1) -> None:
        super().__init__()
        if cfg.width % cfg.heads:
            raise ValueError(f"model.width {cfg.width} not divisible by model.heads {cfg.heads}")
        if cfg.pose_rope and not cfg.uses_poses:
            raise ValueError(
                "model.pose_rope needs poses: set model.condition=poses or model.condition=both"
            )
        if cfg.action_adaln and not cfg.uses_actions:
            raise ValueError(
                "model.action_adaln needs actions: set model.condition=actions or "
                "model.condition=both"
            )
        if cfg.pose_rope and cfg.width // cfg.heads < POSE_ROPE_DIMS:
            raise ValueError(
                f"model.pose_rope rotates {POSE_ROPE_DIMS} dims of every head, but model.width / "
                f"model.heads = {cfg.width // cfg.heads}: use fewer heads or a larger width"
            )
        self.cfg = cfg
        self.channels, self.levels, self.kernels = channels, levels, kernels
        d = cfg.width
        self.cin = channels * 4 ** (kernels - 1)
        self.in_proj = nn.ModuleList(nn.Linear(channels * 4**k, d) for k in range(kernels))
        self.null_token = nn.Parameter(torch.zeros(d))  # padding and CFG-dropped context
        self.level_embed = nn.Embedding(levels, d)
        self.action_embed = nn.Embedding(NO_ACTION + 1, d) if cfg.uses_actions else None
        self.pose_embed = PoseEmbedder(d) if cfg.uses_poses else None
        self.time_embed = TimestepEmbedder(d)
        self.cond_level = nn.Embedding(levels, d)
        self.cond_action = nn.Embedding(NO_ACTION + 1, d) if cfg.action_adaln else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Linear(d, 2 * d)
        self.out_proj = nn.ModuleList(nn.Linear(d, channels * 4**k) for k in range(kernels))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for emb in (self.level_embed, self.action_embed, self.cond_level, self.cond_action):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)
        nn.init.normal_(self.null_token, std=0.02)
        for lin in self.time_embed.mlp:
            if isinstance(lin, nn.Linear):
                nn.init.normal_(lin.weight, std=0.02)
        zero = [b.ada for b in self.blocks] + [self.final_ada, *self.out_proj]
        for lin in zero:  # adaLN-Zero: every block starts as the identity, output starts at 0
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    # --- pieces -----------------------------------------------------------------------------

    def _embed(self, tokens: Tokens, sl: slice) -> Tensor:
        """Input embeddings [B, n, D] of the tokens in slot range ``sl``."""
        values, kernel = tokens.values[:, sl], tokens.kernel[:, sl]
        if self.kernels == 1:
            x = self.in_proj[0](values[..., : self.channels])
        else:
            x = 0
            for k, proj in enumerate(self.in_proj):
                mask = (kernel == k).unsqueeze(-1)
                x = x + mask * proj(values[..., : self.channels * 4**k])
        x = torch.where(tokens.valid[:, sl].unsqueeze(-1), x, self.null_token.to(x.dtype))
        level = tokens.level[:, sl]
        frame = (tokens.frame[:, sl] - tokens.origin.unsqueeze(1)).float()
        pos = position_3d(
            frame,
            block_centre(tokens.row[:, sl], level),
            block_centre(tokens.col[:, sl], level),
            self.cfg.width,
        )
        x = x + pos + self.level_embed(level)
        if self.action_embed is not None:
            x = x + self.action_embed(tokens.action[:, sl])
        if self.pose_embed is not None:
            x = x + self.pose_embed(tokens.pose[:, sl]).to(x.dtype)
        return x

    def _angles(self, tokens: Tokens, sl: slice) -> Tensor | None:
        """Pose rotary angles [B, n, A] of the tokens in slot range ``sl``, or None."""
        return pose_angles(tokens.pose[:, sl]) if self.cfg.pose_rope else None

    def _cond_table(self, t: Tensor, context_time: Tensor) -> Tensor:
        """SiLU'd adaLN conditions [B, 3L, D]: rows l = context at level l (t = 0),
        rows L + l = target at level l (the element's t), rows 2L + l = context at level l
        noised to the element's ``context_time`` (conditioning augmentation; 0: equal to the
        clean rows). With ``action_adaln``, [B, 3L x A, D]: row r x A + a = row r with action a
        (``_cond_id``)."""
        times = torch.stack([torch.zeros_like(t), t, context_time.to(t.dtype)], dim=1).float()
        table = self.time_embed(times).unsqueeze(2) + self.cond_level.weight  # [B, 3, L, D]
        table = table.flatten(1, 2)
        if self.cond_action is not None:
            table = (table.unsqueeze(2) + self.cond_action.weight).flatten(1, 2)
        return F.silu(table)

    def _cond_id(self, row: Tensor, tokens: Tokens, sl: slice) -> Tensor:
        """int64 [B, n]: the condition table's row of the tokens in slot range ``sl``, from
        their (time, level) row ``row`` of ``_cond_table``."""
        if self.cond_action is None:
            return row
        return row * self.cond_action.num_embeddings + tokens.action[:, sl]

    def _context_cond_id(self, tokens: Tokens) -> Tensor:
        """int64 [B, S]: each token's (time, level) row of the condition table as context (the
        noised rows for ``noised`` tokens); target slots are overwritten by the callers."""
        return tokens.level + 2 * self.levels * tokens.noised.long()

    def _head(self, x: Tensor, cond: Tensor, cond_id: Tensor, kernel: Tensor) -> Tensor:
        """v-prediction [B, n, Cin] of target hidden states x [B, n, D]."""
        shift, scale = gather_rows(self.final_ada(cond), cond_id).chunk(2, dim=-1)
        h = modulate(self.final_norm(x), shift, scale)
        if self.kernels == 1:
            return self.out_proj[0](h)
        out = 0
        for k, proj in enumerate(self.out_proj):
            y = F.pad(proj(h), (0, self.cin - self.channels * 4**k))
            out = out + (kernel == k).unsqueeze(-1) * y
        return out

    def _run_block(self, block: Block, *args) -> Tensor:
        if self.cfg.checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    # --- public API ---------------------------------------------------------------------------

    def hidden(self, tokens: Tokens, t: Tensor) -> Tensor:
        """Final hidden states [B, S, D] of every token (joint path). t: float [B] in [0, 1]."""
        sc = tokens.context_slots
        x = self._embed(tokens, slice(None))
        cond = self._cond_table(t, tokens.context_time)
        is_target = torch.arange(tokens.length, device=x.device) >= sc
        row = torch.where(is_target, tokens.level + self.levels, self._context_cond_id(tokens))
        cond_id = self._cond_id(row, tokens, slice(None))
        causal = self.cfg.attention == "context-causal"
        angles = self._angles(tokens, slice(None))
        for block in self.blocks:
            x = self._run_block(block, x, cond, cond_id, sc, causal, angles)
        return x

    def forward(self, tokens: Tokens, t: Tensor) -> Tensor:
        """v-prediction [B, St, Cin] for the target tokens. t: float [B] in [0, 1]."""
        sc = tokens.context_slots
        x = self.hidden(tokens, t)[:, sc:]
        cond = self._cond_table(t, tokens.context_time)
        cond_id = self._cond_id(tokens.level[:, sc:] + self.levels, tokens, slice(sc, None))
        return self._head(x, cond, cond_id, tokens.kernel[:, sc:])

    def encode_context(self, tokens: Tokens) -> ContextCache:
        """Every block's context K/V (context-causal models only); target slots are ignored."""
        if self.cfg.attention != "context-causal":
            raise ValueError(
                "encode_context needs model.attention = 'context-causal': with full attention "
                "the context depends on the noisy targets and its K/V cannot be reused"
            )
        sc = tokens.context_slots
        x = self._embed(tokens, slice(0, sc))
        cond = self._cond_table(torch.zeros(tokens.batch, device=x.device), tokens.context_time)
        cond_id = self._cond_id(self._context_cond_id(tokens)[:, :sc], tokens, slice(0, sc))
        angles = self._angles(tokens, slice(0, sc))
        keys, values = [], []
        for i, block in enumerate(self.blocks):
            mod = block.modulation(cond, cond_id)
            q, k, v = block.project(x, mod, angles)
            keys.append(k)
            values.append(v)
            if i + 1 < len(self.blocks):  # the last block's context output is never used
                x = block.finish(x, attend(q, k, v), mod)
        return ContextCache(keys, values)

    def forward_targets(self, tokens: Tokens, t: Tensor, cache: ContextCache) -> Tensor:
        """v-prediction [B, St, Cin] running only the target tokens through the blocks,
        attending to ``cache`` (``encode_context`` of the same tokens' context)."""
        sc = tokens.context_slots
        if cache.keys[0].shape[2] != sc:
            raise ValueError(
                f"context cache has {cache.keys[0].shape[2]} slots but the tokens have {sc} "
                "context slots: encode_context the same step's tokens"
            )
        x = self._embed(tokens, slice(sc, None))
        cond = self._cond_table(t, tokens.context_time)
        cond_id = self._cond_id(tokens.level[:, sc:] + self.levels, tokens, slice(sc, None))
        angles = self._angles(tokens, slice(sc, None))
        for i, block in enumerate(self.blocks):
            mod = block.modulation(cond, cond_id)
            q, k, v = block.project(x, mod, angles)
            # measured on the H100 (docs/PERFORMANCE.md): concatenating per step beats writing
            # the targets' K/V into a preallocated buffer in place under torch.compile
            k = torch.cat([cache.keys[i].to(k.dtype), k], dim=2)
            v = torch.cat([cache.values[i].to(v.dtype), v], dim=2)
            x = block.finish(x, attend(q, k, v), mod)
        return self._head(x, cond, cond_id, tokens.kernel[:, sc:])
