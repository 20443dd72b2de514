"""FID and FVD: Fréchet distance between Gaussian fits of detector features.

Detectors are the standard TorchScript files (`millivid weights fetch` downloads them):
* FID: ``inception-2015-12-05.pt`` (NVlabs stylegan2-ada metrics), called as
  ``detector(images, return_features=True)`` with float images [N, 3, H, W] in 0..255 (it resizes
  to 299 internally) -> pool features [N, 2048].
* FVD: ``i3d_torchscript.pt`` (StyleGAN-V), called as
  ``detector(videos, rescale=False, resize=True, return_features=True)`` with float videos
  [N, 3, T, H, W] in [-1, 1] -> logits-layer features [N, 400].
"""

from __future__ import annotations

import numpy as np
import torch


class GaussianStats:
    """Running mean and covariance of feature rows, so sets of any size fit in memory."""

    def __init__(self) -> None:
        self.n = 0
        self.total: np.ndarray | None = None  # [D]
        self.outer: np.ndarray | None = None  # [D, D]

    def add(self, features: np.ndarray | torch.Tensor) -> None:
        """Accumulate features [N, D]."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be [N, D], got shape {x.shape}")
        if len(x) == 0:
            return
        if self.total is None:
            self.total = np.zeros(x.shape[1])
            self.outer = np.zeros((x.shape[1], x.shape[1]))
        self.n += len(x)
        self.total += x.sum(0)
        self.outer += x.T @ x

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean [D] and unbiased covariance [D, D] (needs at least 2 rows)."""
        if self.n < 2 or self.total is None or self.outer is None:
            raise ValueError(f"need at least 2 feature rows for a covariance, have {self.n}")
        mu = self.total / self.n
        cov = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, cov


def frechet_from_stats(mu_a, cov_a, mu_b, cov_b) -> float:
    """||mu_a - mu_b||² + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^½).

    tr((S_a S_b)^½) is the sum of the square roots of the eigenvalues of S_a S_b, which are real
    and non-negative for covariance matrices (tiny negative/imaginary round-off is clipped).
    """
    eig = np.linalg.eigvals(cov_a @ cov_b)
    tr_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    diff = mu_a - mu_b
    d = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt)
    # a distance is >= 0; for (near-)equal sets the terms cancel and round-off leaves ~-1e-10
    return max(d, 0.0)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to features a [N, D] and b [M, D] (N, M >= 2)."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be [N, D] and [M, D], got {a.shape} and {b.shape}")
    sa, sb = GaussianStats(), GaussianStats()
    sa.add(a)
    sb.add(b)
    return frechet_from_stats(*sa.mean_cov(), *sb.mean_cov())


@torch.no_grad()
def inception_features(detector: torch.nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """FID features. frames uint8 [N, H, W, 3] -> float [N, D]."""
    x = frames.permute(0, 3, 1, 2).float()
    return detector(x, return_features=True).float()


@torch.no_grad()
def i3d_features(detector: torch.nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """FVD features. clips uint8 [N, T, H, W, 3] -> float [N, D]."""
    x = clips.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # [N, 3, T, H, W] in [-1, 1]
    return detector(x, rescale=False, resize=True, return_features=True).float()


def clip_starts(start: int, stop: int, clip: int) -> list[int]:
    """Starts of the non-overlapping ``clip``-frame clips that fit in frames [start, stop)."""
    return list(range(start, stop - clip + 1, clip))
