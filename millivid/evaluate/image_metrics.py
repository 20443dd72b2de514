"""PSNR, SSIM and sharpness of uint8 RGB frames, batched in torch (CPU or GPU).

Both agree with scikit-image (``peak_signal_noise_ratio(data_range=255)`` and
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
channel_axis=-1, data_range=255)``) to 1e-3; tests/test_evaluate_image_metrics.py checks it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PSNR_CAP_DB = 100.0  # identical frames have infinite PSNR; we report this cap instead
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != ground truth {tuple(gt.shape)}")
    if pred.dim() < 3 or pred.shape[-1] != 3:
        raise ValueError(f"frames must be [..., H, W, 3], got {tuple(pred.shape)}")


def psnr(pred: torch.Tensor, gt: torch.Tensor, cap: float = PSNR_CAP_DB) -> torch.Tensor:
    """PSNR in dB per frame. pred, gt: uint8 [..., H, W, 3] -> float64 [...].

    MSE is over all pixels and channels of a frame (as scikit-image); PSNR = 10 log10(255² / MSE),
    capped at ``cap`` dB (identical frames would give +inf).
    """
    _check_pair(pred, gt)
    diff = pred.float() - gt.float()
    mse = diff.square().flatten(-3).double().mean(-1)
    out = 10.0 * torch.log10(255.0**2 / mse.clamp_min(1e-30))
    return out.clamp(max=cap).masked_fill(mse == 0, cap)


def detail(frames: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between horizontal and vertical neighbours, over pixels and
    channels: uint8 [..., H, W, 3] -> float64 [...] (0 for a flat frame)."""
    x = frames.double()
    dx = (x[..., :, 1:, :] - x[..., :, :-1, :]).abs().flatten(-3).mean(-1)
    dy = (x[..., 1:, :, :] - x[..., :-1, :, :]).abs().flatten(-3).mean(-1)
    return (dx + dy) / 2


def sharpness(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``detail(pred) / detail(gt)`` per frame: 1 as detailed as the truth, below 1 blurrier
    (the hedge PSNR rewards: a blurred guess scores better than a sharp wrong one), above 1
    noisier; NaN where the truth is flat. pred, gt: uint8 [..., H, W, 3] -> float64 [...]."""
    _check_pair(pred, gt)
    truth = detail(gt)
    return (detail(pred) / truth.clamp_min(1e-12)).masked_fill(truth == 0, float("nan"))


def gaussian_window(sigma: float = SSIM_SIGMA, truncate: float = 3.5) -> torch.Tensor:
    """Normalised 1-D Gaussian [2r+1] with r = int(truncate·sigma + 0.5), as scipy.ndimage."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _blur_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian blur. x: [N, C, H, W] -> [N, C, H-2r, W-2r]."""
    c = x.shape[1]
    k = window.to(device=x.device, dtype=x.dtype)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def ssim(
    pred: torch.Tensor,
    gt: torch.Tensor,
    sigma: float = SSIM_SIGMA,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """SSIM per frame (Wang et al. 2004), mean over channels. uint8 [..., H, W, 3] -> [...].

    Gaussian window σ=1.5 truncated at 3.5σ (11 taps), K1=0.01, K2=0.03, population covariance.
    scikit-image averages the SSIM map over the interior only (a border of (win-1)/2 pixels is
    cropped), where the window never touches padding, so a 'valid' convolution is exact.
    """
    _check_pair(pred, gt)
    window = gaussian_window(sigma)
    h, w = pred.shape[-3:-1]
    if min(h, w) < window.numel():
        raise ValueError(f"SSIM needs frames of at least {window.numel()} px, got {h}x{w}")
    lead = pred.shape[:-3]
    # [N, 3, H, W] in [0, 1]: scaling by 1/255 leaves SSIM unchanged and helps float32 precision
    x = pred.reshape(-1, h, w, 3).permute(0, 3, 1, 2).to(dtype) / 255.0
    y = gt.reshape(-1, h, w, 3).permute(0, 3, 1, 2).to(dtype) / 255.0
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    mu = _blur_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), window)
    mx, my, mxx, myy, mxy = mu.chunk(5, dim=1)
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    num = (2 * mx * my + c1) * (2 * vxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    per_frame = (num / den).mean(dim=(1, 2, 3))
    return per_frame.double().reshape(lead)
