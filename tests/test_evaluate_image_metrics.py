"""PSNR/SSIM agree with scikit-image; caps; ordering original > shifted > random; sharpness;
horizons."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from millivid.evaluate.horizons import horizon_means, horizon_ranges
from millivid.evaluate.image_metrics import PSNR_CAP_DB, psnr, sharpness, ssim


def _sk_ssim(a, b):
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1,
        data_range=255,
    )


def _structured(h, w, rng):
    """Smooth gradients + blocks + a little noise: image-like content, not just noise."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 / w, y * 255 / h, (x + y) % 32 * 8], -1)
    img[h // 4 : h // 2, w // 3 : w // 2] = [200, 30, 90]
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [(64, 64), (11, 11), (33, 47), (100, 80), (256, 256)])
@pytest.mark.parametrize("kind", ["random", "structured"])
def test_agrees_with_scikit_image(size, kind):
    rng = np.random.default_rng(sum(size))
    h, w = size
    a = (
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if kind == "random"
        else _structured(h, w, rng)
    )
    b = np.clip(a.astype(int) + rng.integers(-50, 50, a.shape), 0, 255).astype(np.uint8)
    b[: h // 3] = np.roll(b[: h // 3], 3, axis=1)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert abs(ssim(ta, tb).item() - _sk_ssim(a, b)) < 1e-3
    assert abs(psnr(ta, tb).item() - peak_signal_noise_ratio(a, b, data_range=255)) < 1e-3


def test_batched_equals_per_frame():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.integers(0, 256, (2, 3, 24, 20, 3), dtype=np.uint8))
    b = torch.from_numpy(rng.integers(0, 256, (2, 3, 24, 20, 3), dtype=np.uint8))
    s, p = ssim(a, b), psnr(a, b)
    assert s.shape == p.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert abs(s[i, j].item() - _sk_ssim(a[i, j].numpy(), b[i, j].numpy())) < 1e-3
            assert abs(s[i, j] - ssim(a[i, j], b[i, j])) < 1e-9


def test_identical_frames_cap_and_one():
    a = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    assert torch.all(psnr(a, a) == PSNR_CAP_DB)
    assert torch.allclose(ssim(a, a), torch.ones(4, dtype=torch.float64), atol=1e-6)
    flat = torch.full((1, 16, 16, 3), 7, dtype=torch.uint8)
    assert ssim(flat, flat).item() == pytest.approx(1.0, abs=1e-6)


def test_shape_errors_are_clear():
    a = torch.zeros(2, 16, 16, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="ground truth"):
        ssim(a, a[:1])
    with pytest.raises(ValueError, match="at least 11"):
        ssim(a[:, :8, :8], a[:, :8, :8])


def test_shifted_between_original_and_random():
    from millivid.presets import PRESETS
    from millivid.world import make_videos

    gt = make_videos([3], PRESETS["tiny"].world).video[0, :16]
    shifted = torch.roll(gt, 3, dims=2)
    noise = torch.randint(
        0, 256, gt.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    for metric in (psnr, ssim):
        orig, sh, rnd = (metric(x, gt).mean().item() for x in (gt, shifted, noise))
        assert orig > sh > rnd


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(11, 24), st.integers(11, 24))
def test_ssim_symmetric_and_bounded(seed, h, w):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 256, (2, h, w, 3), dtype=torch.uint8, generator=g)
    b = torch.randint(0, 256, (2, h, w, 3), dtype=torch.uint8, generator=g)
    s_ab, s_ba = ssim(a, b), ssim(b, a)
    assert torch.allclose(s_ab, s_ba, atol=1e-6)
    assert torch.all(s_ab <= 1 + 1e-6) and torch.all(s_ab >= -1 - 1e-6)
    assert torch.allclose(psnr(a, b), psnr(b, a))
    assert torch.all(psnr(a, b) < PSNR_CAP_DB)


def test_sharpness_is_one_for_the_truth_below_for_blur_above_for_noise():
    """The ratio of the frame's mean absolute neighbour difference to the truth's: a blurred
    frame (the hedge PSNR rewards) is below 1, a noisy one above, a flat one 0."""
    rng = np.random.default_rng(0)
    gt = torch.from_numpy(_structured(32, 32, rng))[None]
    blurred = torch.nn.functional.avg_pool2d(
        gt.permute(0, 3, 1, 2).float(), 3, stride=1, padding=1, count_include_pad=False
    )
    blurred = blurred.round().to(torch.uint8).permute(0, 2, 3, 1)
    noisy = (gt.float() + torch.from_numpy(rng.normal(0, 20, gt.shape))).clamp(0, 255)
    flat = torch.full_like(gt, 128)
    pred = torch.cat([gt, blurred, noisy.to(torch.uint8), flat])
    value = sharpness(pred, gt.expand_as(pred))
    assert value.shape == (4,) and value[0] == 1.0
    assert 0 < value[1] < 0.9 and value[2] > 1.1 and value[3] == 0.0
    assert psnr(blurred, gt) > psnr(noisy.to(torch.uint8), gt)  # PSNR prefers the blur
    nan = sharpness(gt, flat[:1])  # a flat truth has no detail to compare with
    assert torch.isnan(nan).all()


def test_sharpness_is_best_at_the_truths_value_in_tables_and_pairs():
    """Neither more nor less detail is better: the value nearest 1 is bold, and a method wins a
    video when its sharpness is nearer 1 than the reference's."""
    from millivid.evaluate.horizons import _paired_cell
    from millivid.evaluate.markdown import direction_arrow, grid_table

    cell = _paired_cell("sharpness", [(0.9, 0.5), (1.2, 1.05)])
    assert cell["wins"] == 0.5 and cell["mean"] == pytest.approx(0.275)
    table = grid_table({"blurry": {"k": 0.7}, "close": {"k": 1.1}}, [("k", "S", "sharpness")])
    assert "| close | **1.100** |" in table and "| blurry | 0.700 |" in table
    assert direction_arrow("sharpness") == "→1" and direction_arrow("lpips") == "↓"


def test_horizon_averaging_known_sequence():
    values = list(range(1, 301))  # frame k has value k
    means = horizon_means({"x": values}, ("short", "medium", "long"), (64, 256, 768))
    assert means["short"]["x"] == pytest.approx(np.mean(range(1, 65)))
    assert means["medium"]["x"] == pytest.approx(np.mean(range(65, 257)))
    assert means["long"]["x"] == pytest.approx(np.mean(range(257, 301)))  # partly reached
    short_only = horizon_means({"x": [1.0] * 64}, ("short", "medium", "long"), (64, 256, 768))
    assert list(short_only) == ["short"]  # medium and long are not reached: omitted
    assert horizon_ranges(65, ("a", "b"), (64, 256)) == {"a": (0, 64), "b": (64, 65)}
    with pytest.raises(ValueError, match="increasing"):
        horizon_ranges(10, ("a", "b"), (64, 10))
