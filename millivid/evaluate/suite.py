"""One place that knows every metric: per-frame metrics and the set metrics FID/FVD.

``MetricSuite(cfg, device)`` loads each learned metric's weights on first use (so psnr/ssim need
no files), then ``per_frame(pred, gt, labels, actions, prev)`` gives ``{metric: [T]}`` and
``features`` the detector features the Fréchet metrics pool over a horizon.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from millivid.device import resolve_device
from millivid.evaluate import frechet
from millivid.evaluate.action_probe import action_accuracy, frames_before, load_action_probe
from millivid.evaluate.config import EvalConfig
from millivid.evaluate.dino import DinoViT, dino_cosine
from millivid.evaluate.image_metrics import psnr, sharpness, ssim
from millivid.evaluate.keypoints import KeypointMatcher
from millivid.evaluate.probe import load_probe, mean_iou, pixel_accuracy
from millivid.weights.files import load_torchscript, weight_path
from millivid.weights.lpips import LPIPS

FRAME_METRICS = (
    "psnr",
    "ssim",
    "sharpness",
    "lpips",
    "dino",
    "matches",
    "probe_acc",
    "probe_miou",
    "action_acc",
)
SET_METRICS = ("fid", "fvd")
MODEL_FREE = ("psnr", "ssim", "sharpness")  # frame metrics that need no weights
ALL_METRICS = FRAME_METRICS + SET_METRICS
ALIASES = {"probe": ("probe_acc", "probe_miou"), "action": ("action_acc",), "all": ALL_METRICS}
# the names --metrics takes: the metrics no alias stands for, then the aliases
METRIC_NAMES = tuple(
    m for m in ALL_METRICS if not any(m in a for k, a in ALIASES.items() if k != "all")
) + tuple(ALIASES)
HIGHER_IS_BETTER = {
    "psnr": True,
    "ssim": True,
    "lpips": False,
    "dino": True,
    "matches": True,
    "probe_acc": True,
    "probe_miou": True,
    "action_acc": True,
    "fid": False,
    "fvd": False,
}
# metrics best at the truth's value, neither higher nor lower (sharpness 1: as detailed as it)
TARGET_VALUE = {"sharpness": 1.0}


def goodness(metric: str, value):
    """``value`` (a number or an array) mapped so that higher is better: itself, its negative
    (lower is better) or minus its distance from the target value."""
    if metric in TARGET_VALUE:
        return -abs(value - TARGET_VALUE[metric])
    return value if HIGHER_IS_BETTER.get(metric, True) else -value


DISPLAY = {
    "psnr": "PSNR",
    "ssim": "SSIM",
    "sharpness": "Sharpness",
    "lpips": "LPIPS",
    "dino": "DINOv2",
    "matches": "Matches",
    "probe_acc": "Probe acc.",
    "probe_miou": "Probe mIoU",
    "action_acc": "Action acc.",
    "fid": "FID",
    "fvd": "FVD",
}


def parse_metrics(names: str | Sequence[str]) -> tuple[str, ...]:
    """'psnr,ssim,probe' -> ('psnr', 'ssim', 'probe_acc', 'probe_miou'); unknown names error."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for name in (n.strip().lower() for n in items if n.strip()):
        expanded = ALIASES.get(name, (name,))
        for m in expanded:
            if m not in ALL_METRICS:
                known = ", ".join(ALL_METRICS + tuple(ALIASES))
                raise ValueError(f"unknown metric {name!r} (known: {known})")
            if m not in out:
                out.append(m)
    return tuple(out)


def _model_name(metric: str) -> str:
    """The network a frame or set metric runs on (probe_acc -> probe, action_acc -> ...)."""
    if metric.startswith("probe_"):
        return "probe"
    return "action_probe" if metric == "action_acc" else metric


class MetricSuite:
    """Lazily loaded metric models on one device."""

    def __init__(self, cfg: EvalConfig, device: str | torch.device = "auto") -> None:
        self.cfg = cfg
        self.device = resolve_device(device)
        self._models: dict[str, torch.nn.Module] = {}

    def model(self, name: str) -> torch.nn.Module:
        """The metric network ``name`` (lpips, dino, matches, probe, action_probe, fid, fvd),
        loaded once."""
        if name not in self._models:
            self._models[name] = self._load(name).to(self.device)
        return self._models[name]

    def _load(self, name: str) -> torch.nn.Module:
        c = self.cfg
        if name == "lpips":
            return LPIPS.from_files(
                weight_path("alexnet", c.alexnet_weights), weight_path("lpips", c.lpips_weights)
            )
        if name == "dino":
            return DinoViT.from_file(weight_path("dino", c.dino_weights))
        if name == "matches":
            return KeypointMatcher.from_files(
                weight_path("disk", c.disk_weights),
                weight_path("lightglue", c.lightglue_weights),
                c.match_confidence,
            )
        if name == "probe":
            return load_probe(c.probe_weights)
        if name == "action_probe":
            return load_action_probe(c.action_probe_weights)
        if name in SET_METRICS:
            return load_torchscript(weight_path(name, getattr(c, f"{name}_weights")), self.device)
        raise ValueError(f"no model for metric {name!r}")

    def load_all(self, metrics: Sequence[str]) -> None:
        """Load every model ``metrics`` need now, so a missing file fails before any work."""
        for m in metrics:
            if m in MODEL_FREE:
                continue
            self.model(_model_name(m))

    @torch.no_grad()
    def per_frame(
        self,
        metrics: Sequence[str],
        pred: torch.Tensor,
        gt: torch.Tensor,
        labels: torch.Tensor | None = None,
        actions: torch.Tensor | None = None,
        prev: torch.Tensor | None = None,
    ) -> dict[str, list[float]]:
        """Per-frame values of the frame metrics in ``metrics``.

        pred, gt: uint8 [T, H, W, 3]; labels: ground-truth block ids [T, H, W] (probe metrics);
        actions: ground-truth actions int [T] of the compared frames and prev: the predicted frame
        uint8 [H, W, 3] just before pred[0] (action_acc reads the pair (pred[t-1], pred[t])).
        """
        out: dict[str, list[torch.Tensor]] = {m: [] for m in metrics if m in FRAME_METRICS}
        if any(m.startswith("probe_") for m in out) and labels is None:
            raise ValueError("probe metrics need the ground-truth 'labels' array in the GT file")
        if "action_acc" in out:
            before, actions = _action_inputs(pred, actions, prev)
        step = max(1, self.cfg.batch_frames)
        for a in range(0, pred.shape[0], step):
            p = pred[a : a + step].to(self.device)
            g = gt[a : a + step].to(self.device)
            for m in out:
                if m == "action_acc":
                    value = self._action_acc(before[a : a + step], p, actions[a : a + step])
                else:
                    value = self._frame_metric(m, p, g, labels, a)
                out[m].append(value.double().cpu())
        return {m: torch.cat(v).tolist() if v else [] for m, v in out.items()}

    def _action_acc(self, before, p, actions) -> torch.Tensor:
        """1/0 per frame: the action probe reads actions[t] from (before[t], p[t])."""
        pairs = torch.stack([before.to(self.device), p], dim=1)  # [n, 2, H, W, 3]
        return action_accuracy(self.model("action_probe"), pairs, actions)

    def _frame_metric(self, m, p, g, labels, a) -> torch.Tensor:
        if m == "psnr":
            return psnr(p, g)
        if m == "ssim":
            return ssim(p, g)
        if m == "sharpness":
            return sharpness(p, g)
        if m == "lpips":
            return self.model("lpips")(p, g)
        if m == "dino":
            return dino_cosine(self.model("dino"), p, g)
        if m == "matches":
            return self.model("matches")(p, g)

        probe = self.model("probe")
        seg = probe.predict(p)
        lab = labels[a : a + p.shape[0]].to(self.device).long()
        if m == "probe_acc":
            return pixel_accuracy(seg, lab)
        return mean_iou(seg, lab, probe.cfg.classes)

    @torch.no_grad()
    def features(self, metric: str, frames: torch.Tensor) -> torch.Tensor:
        """Detector features for FID (per frame) or FVD (per clip of cfg.fvd_clip frames).

        frames: uint8 [T, H, W, 3] -> [n, D] on the CPU (n = T for FID, T // clip for FVD).
        """
        det = self.model(metric)
        feats = []
        if metric == "fid":
            step = max(1, self.cfg.batch_frames)
            for a in range(0, frames.shape[0], step):
                chunk = frames[a : a + step].to(self.device)
                feats.append(frechet.inception_features(det, chunk).cpu())
        else:
            clip = self.cfg.fvd_clip
            starts = frechet.clip_starts(0, frames.shape[0], clip)
            if starts:
                clips = torch.stack([frames[s : s + clip] for s in starts]).to(self.device)
                feats.append(frechet.i3d_features(det, clips).cpu())
        return torch.cat(feats) if feats else torch.zeros(0, 0)


def _action_inputs(pred: torch.Tensor, actions, prev) -> tuple[torch.Tensor, torch.Tensor]:
    """(frame before each frame of pred uint8 [T, H, W, 3], actions int64 [T]) for action_acc,
    which needs the GT actions int [T] and prev, the frame uint8 [H, W, 3] before pred[0]."""
    missing = [n for n, v in (("actions", actions), ("prev", prev)) if v is None]
    if missing:
        raise ValueError(
            f"action_acc needs {' and '.join(missing)}: the ground-truth 'actions' array of the "
            "GT file and the predicted frame before the first compared one (prev)"
        )
    actions, prev = torch.as_tensor(actions).long(), torch.as_tensor(prev)
    if tuple(actions.shape) != tuple(pred.shape[:1]) or prev.shape != pred.shape[1:]:
        raise ValueError(
            f"action_acc: actions {tuple(actions.shape)} and prev {tuple(prev.shape)} must be "
            f"[T] = [{pred.shape[0]}] and [H, W, 3] = {list(pred.shape[1:])}"
        )
    return frames_before(pred, prev), actions
