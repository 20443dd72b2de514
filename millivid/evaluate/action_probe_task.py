"""Training and scoring the action probe on ground-truth world renders (a ``TrainTask``).

Videos come from ``millivid.world.make_videos`` on training seeds (< TEST_SEED_OFFSET), rendered
once into a pool. A sample is a pair of consecutive frames (t-1, t) and the action t; turn frames
are ~10% of a video, so a batch draws half forward and half turn pairs, and flips each pair
horizontally with probability 1/2 (which swaps left and right). batch(step) depends only on the
generator, so resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from millivid.evaluate.action_probe import ACTION_NAMES, ActionProbe, ActionProbeConfig
from millivid.world import make_videos

FORWARD, LEFT, RIGHT = 0, 1, 2


@dataclass(frozen=True)
class ActionData:
    """Videos uint8 [V, T, H, W, 3] and their actions int64 [V, T] (action t: frame t-1 -> t)."""

    video: torch.Tensor
    actions: torch.Tensor

    def pair_index(self) -> torch.Tensor:
        """Flat indices v * T + t of every pair (t >= 1): int64 [V * (T - 1)]."""
        v, t = self.actions.shape
        return (torch.arange(v)[:, None] * t + torch.arange(1, t)[None]).flatten()

    def pairs(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat indices int64 [N] -> (pairs uint8 [N, 2, H, W, 3], actions int64 [N])."""
        frames = self.video.flatten(0, 1)  # [V*T, H, W, 3]
        return torch.stack([frames[idx - 1], frames[idx]], 1), self.actions.flatten()[idx]


def render_action_data(world_cfg, seeds: list[int], frames_per_video: int) -> ActionData:
    """Render ``seeds`` with the world (the first ``frames_per_video`` frames) on the CPU."""
    vids = make_videos(seeds, replace(world_cfg, frames=frames_per_video))
    return ActionData(vids.video.cpu(), vids.actions.cpu())


def flip_pairs(pairs: torch.Tensor, actions: torch.Tensor, flip: torch.Tensor):
    """Mirror the pairs where ``flip`` (bool [N]) left-right; their turns swap direction.

    pairs uint8 [N, 2, H, W, 3], actions int64 [N] -> the same shapes."""
    pairs = torch.where(flip[:, None, None, None, None], pairs.flip(3), pairs)
    swapped = torch.where(actions == LEFT, RIGHT, torch.where(actions == RIGHT, LEFT, actions))
    return pairs, torch.where(flip, swapped, actions)


def blurred(data: ActionData) -> ActionData:
    """The videos at half resolution, scaled back up (bilinear): a stand-in for the softer frames
    of a video decoded from latents. Same shapes."""
    v = data.video
    x = v.flatten(0, 1).permute(0, 3, 1, 2).float()  # [V*T, 3, H, W]
    x = F.interpolate(F.avg_pool2d(x, 2), size=v.shape[2:4], mode="bilinear")
    x = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    return ActionData(x.reshape(v.shape), data.actions)


class ActionProbeTask:
    """``TrainTask`` for the action probe: cross-entropy on class-balanced frame pairs."""

    items_name = "pairs"

    def __init__(self, data: ActionData, cfg: ActionProbeConfig, batch_size: int) -> None:
        self.data = data
        self.cfg = cfg
        self.items_per_batch = batch_size
        idx = data.pair_index()
        turn = data.actions.flatten()[idx] != FORWARD
        self.forward_idx, self.turn_idx = idx[~turn], idx[turn]
        if len(self.turn_idx) == 0 or len(self.forward_idx) == 0:
            raise ValueError("action probe data needs forward and turn frames; render more frames")

    def build_model(self) -> ActionProbe:
        return ActionProbe(self.cfg)

    def batch(self, step: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(pairs uint8 [B, 2, H, W, 3], actions int64 [B]): half forward, half turn pairs."""
        n_turn = self.items_per_batch // 2
        n_fwd = self.items_per_batch - n_turn
        fwd = self.forward_idx[torch.randint(len(self.forward_idx), (n_fwd,), generator=generator)]
        trn = self.turn_idx[torch.randint(len(self.turn_idx), (n_turn,), generator=generator)]
        pairs, actions = self.data.pairs(torch.cat([fwd, trn]))
        flip = torch.rand(len(actions), generator=generator) < 0.5
        return flip_pairs(pairs, actions, flip)

    def loss(self, model, batch, device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pairs, actions = (t.to(device) for t in batch)
        logits = model(pairs)
        loss = F.cross_entropy(logits.float(), actions)
        with torch.no_grad():
            acc = (logits.argmax(1) == actions).float().mean()
        return loss, {"acc": acc}


@torch.no_grad()
def action_scores(model: ActionProbe, data: ActionData, batch: int = 256) -> dict:
    """Accuracy of the probe on every pair of ``data``: overall, per action, on turns
    (left or right), the majority-class rate (always answering the most frequent action) and the
    pair count per action. An action without pairs scores None."""
    model.eval()
    device = next(model.parameters()).device
    idx = data.pair_index()
    hits, truth = [], []
    for a in range(0, len(idx), batch):
        pairs, actions = data.pairs(idx[a : a + batch])
        hits.append((model.predict(pairs.to(device)).cpu() == actions).double())
        truth.append(actions)
    hit, act = torch.cat(hits), torch.cat(truth)
    counts = torch.bincount(act, minlength=len(ACTION_NAMES))
    scores = {"accuracy": hit.mean().item()}
    groups = {name: act == k for k, name in enumerate(ACTION_NAMES)} | {"turn": act != FORWARD}
    for name, rows in groups.items():
        scores[name] = hit[rows].mean().item() if rows.any() else None  # None: no such pairs
    scores["majority"] = (counts.max() / counts.sum()).item()
    scores["pairs"] = {name: int(c) for name, c in zip(ACTION_NAMES, counts.tolist())}
    return scores
