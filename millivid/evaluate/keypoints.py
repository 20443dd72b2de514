"""LightGlue keypoint matches between generated and ground-truth frames (paper Table 1).

kornia provides DISK and LightGlue; both are built here without weights and loaded from the
local published files (kornia's own ``from_pretrained`` would download them). The metric counts
matches whose LightGlue confidence exceeds 0.5.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from millivid.weights.files import load_into, load_state_dict_file

MAX_KEYPOINTS = 2048


def _kornia_feature():
    try:
        import kornia.feature as kf
    except ImportError as err:  # optional dependency: pip install 'millivid[metrics]'
        raise ImportError("the 'matches' metric needs kornia: pip install kornia") from err
    return kf


def _lightglue_state(state: dict, n_layers: int) -> dict:
    """Rename the published LightGlue keys (self_attn.i / cross_attn.i) to kornia's layout."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("matcher.")
        for i in range(n_layers):
            key = key.replace(f"self_attn.{i}.", f"transformers.{i}.self_attn.")
            key = key.replace(f"cross_attn.{i}.", f"transformers.{i}.cross_attn.")
        out[key] = value
    return out


class KeypointMatcher(nn.Module):
    """DISK keypoints + LightGlue; ``forward`` counts confident matches per frame pair."""

    def __init__(self, disk: nn.Module, lightglue: nn.Module, confidence: float = 0.5) -> None:
        super().__init__()
        self.disk = disk
        self.lightglue = lightglue
        self.confidence = confidence

    @classmethod
    def from_files(cls, disk_path: Path, lightglue_path: Path, confidence: float = 0.5):
        """DISK ``depth-save.pth`` (state under 'extractor') and ``disk_lightglue.pth``."""
        kf = _kornia_feature()
        disk = kf.DISK()
        disk_state = load_state_dict_file(disk_path)
        load_into(disk, disk_state.get("extractor", disk_state), disk_path)
        lightglue = kf.LightGlue(features=None, input_dim=128, flash=False)
        glue_state = _lightglue_state(load_state_dict_file(lightglue_path), lightglue.conf.n_layers)
        # confidence_thresholds is a derived buffer, absent from the published file
        glue_state.setdefault("confidence_thresholds", lightglue.confidence_thresholds)
        load_into(lightglue, glue_state, lightglue_path)
        return cls(disk.eval(), lightglue.eval(), confidence)

    @torch.no_grad()
    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        """pred, gt: uint8 [N, H, W, 3] -> number of matches with confidence > threshold [N]."""
        counts = []
        size = torch.tensor([[pred.shape[2], pred.shape[1]]], device=pred.device).float()
        for a, b in zip(pred, gt):
            images = torch.stack([a, b]).permute(0, 3, 1, 2).float() / 255.0
            f0, f1 = self.disk(images, n=MAX_KEYPOINTS, pad_if_not_divisible=True)
            if len(f0.keypoints) == 0 or len(f1.keypoints) == 0:
                counts.append(0)
                continue
            out = self.lightglue(
                {
                    "image0": {
                        "keypoints": f0.keypoints[None],
                        "descriptors": f0.descriptors[None],
                        "image_size": size,
                    },
                    "image1": {
                        "keypoints": f1.keypoints[None],
                        "descriptors": f1.descriptors[None],
                        "image_size": size,
                    },
                }
            )
            good = (out["matches0"][0] > -1) & (out["matching_scores0"][0] > self.confidence)
            counts.append(int(good.sum()))
        return torch.tensor(counts, dtype=torch.float64)
