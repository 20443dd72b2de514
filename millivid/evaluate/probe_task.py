"""Training the segmentation probe on ground-truth world renders (a ``TrainTask``).

Frames come from ``millivid.world.make_videos`` on training seeds (< TEST_SEED_OFFSET), rendered
once into a pool; a batch is a seeded random draw of frames from the pool, so batch(step) is
deterministic and resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from millivid.evaluate.probe import ProbeConfig, SegmentationProbe, mean_iou, pixel_accuracy
from millivid.world import make_videos


@dataclass(frozen=True)
class ProbeData:
    """Frames uint8 [N, H, W, 3] and their block labels uint8 [N, H, W]."""

    frames: torch.Tensor
    labels: torch.Tensor


def render_probe_data(world_cfg, seeds: list[int], frames_per_video: int, stride: int = 1):
    """Render ``seeds`` with the world and keep every ``stride``-th frame of the first
    ``frames_per_video`` -> ProbeData on the CPU."""
    cfg = replace(world_cfg, frames=frames_per_video)
    vids = make_videos(seeds, cfg)
    frames = vids.video[:, ::stride].reshape(-1, *vids.video.shape[2:]).cpu()
    labels = vids.labels[:, ::stride].reshape(-1, *vids.labels.shape[2:]).cpu()
    return ProbeData(frames, labels)


class ProbeTask:
    """``TrainTask`` for the probe: cross-entropy on per-pixel block kinds."""

    items_name = "frames"

    def __init__(self, data: ProbeData, cfg: ProbeConfig, batch_size: int) -> None:
        self.data = data
        self.cfg = cfg
        self.items_per_batch = batch_size

    def build_model(self) -> SegmentationProbe:
        return SegmentationProbe(self.cfg)

    def batch(self, step: int, generator: torch.Generator) -> ProbeData:
        """A random batch of frames, with a random horizontal flip (labels flip alike)."""
        idx = torch.randint(len(self.data.frames), (self.items_per_batch,), generator=generator)
        frames, labels = self.data.frames[idx], self.data.labels[idx]
        if torch.rand((), generator=generator) < 0.5:
            frames, labels = frames.flip(2), labels.flip(2)
        return ProbeData(frames, labels)

    def loss(self, model, batch: ProbeData, device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(batch.frames.to(device))
        target = batch.labels.to(device).long()
        loss = F.cross_entropy(logits.float(), target)
        with torch.no_grad():
            acc = (logits.argmax(1) == target).float().mean()
        return loss, {"acc": acc}


@torch.no_grad()
def probe_scores(model: SegmentationProbe, data: ProbeData, batch: int = 256) -> dict[str, float]:
    """Mean pixel accuracy and mean per-frame mIoU of the probe on (ground-truth) frames."""
    model.eval()
    device = next(model.parameters()).device
    acc, miou = [], []
    for a in range(0, len(data.frames), batch):
        seg = model.predict(data.frames[a : a + batch].to(device))
        lab = data.labels[a : a + batch].to(device).long()
        acc.append(pixel_accuracy(seg, lab))
        miou.append(mean_iou(seg, lab, model.cfg.classes))
    return {
        "pixel_accuracy": torch.cat(acc).mean().item(),
        "mean_iou": torch.cat(miou).mean().item(),
    }
