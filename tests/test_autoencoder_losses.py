from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.autoencoder.losses import PerceptualLoss, gradient_l1, image_gradients
from millivid.autoencoder.task import AutoencoderTask
from millivid.presets import PRESETS
from millivid.weights.files import MissingWeightsError
from millivid.weights.lpips import LPIPS, TAP_CHANNELS, AlexFeatures

TINY = PRESETS["tiny"].ae


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory):
    """Random weights in the layout of the published files (torchvision AlexNet, LPIPS alex.pth)."""
    d = tmp_path_factory.mktemp("lpips")
    torch.manual_seed(0)
    alex = dict(AlexFeatures().state_dict())
    alex["classifier.1.weight"] = torch.zeros(4, 4)  # the torchvision file has a classifier too
    torch.save(alex, d / "alexnet-owt-7be5be79.pth")
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(TAP_CHANNELS)}
    torch.save(lins, d / "alex.pth")
    return d / "alexnet-owt-7be5be79.pth", d / "alex.pth"


def images(n=2, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 9),
    st.integers(2, 9),
    st.floats(-1, 1, allow_nan=False),
    st.integers(0, 2**16),
)
def test_gradient_l1_ignores_a_constant_offset_and_sees_edges(h, w, offset, seed):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(seed))
    assert gradient_l1(x + offset, x) < 1e-6  # gradients of a shifted image are unchanged
    edge = x.clone()
    edge[..., :, : w // 2] += 1.0  # a vertical edge changes the W gradients
    assert gradient_l1(edge, x) > 0.1 / w
    gx, gy = image_gradients(x)
    assert gx.shape == (2, 3, h, w - 1) and gy.shape == (2, 3, h - 1, w)


def test_gradient_l1_of_a_single_pixel_image_is_zero_and_differentiable():
    out = torch.rand(2, 3, 1, 1, requires_grad=True)
    loss = gradient_l1(out, torch.rand(2, 3, 1, 1))
    loss.backward()
    assert loss.item() == 0.0 and out.grad is not None


def test_perceptual_loss_matches_the_lpips_metric_and_has_gradients(lpips_files):
    loss_fn = PerceptualLoss.from_files(*lpips_files)
    metric = LPIPS.from_files(*lpips_files)
    a, b = images(seed=1), images(seed=2)
    assert float(loss_fn(a, a)) < 1e-6
    frames = [((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1) for x in (a, b)]
    a8, b8 = (f.permute(0, 3, 1, 2).float() / 127.5 - 1 for f in frames)
    expected = metric(*frames).mean()
    assert torch.allclose(loss_fn(a8, b8), expected, rtol=1e-3)
    pred = a.clone().requires_grad_(True)
    loss_fn(pred, b).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.parameters())  # frozen: never trained


def test_perceptual_loss_upsamples_small_frames(lpips_files):
    loss_fn = PerceptualLoss.from_files(*lpips_files)
    assert float(loss_fn(images(size=16, seed=3), images(size=16, seed=4))) > 0


def test_missing_lpips_file_is_named(tmp_path, lpips_files):
    missing = tmp_path / "nowhere" / "alex.pth"
    with pytest.raises(MissingWeightsError, match=f"{missing}.*ae.lpips_linear"):
        PerceptualLoss.from_files(lpips_files[0], missing)
    cfg = replace(TINY, lpips_weight=0.1, lpips_alexnet=str(tmp_path / "alexnet.pth"))
    with pytest.raises(MissingWeightsError, match=r"alexnet\.pth.*does not exist"):
        AutoencoderTask(cfg, torch.zeros(4, 32, 32, 3, dtype=torch.uint8), 2)


def test_task_adds_the_optional_terms(lpips_files):
    bank = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(0)
    plain = AutoencoderTask(TINY, bank, 4)
    torch.manual_seed(0)
    model = plain.build_model()
    batch = plain.batch(0, gen)
    mse, metrics = plain.loss(model, batch, "cpu")
    assert set(metrics) == {"mse_top"}
    cfg = replace(
        TINY,
        gradient_weight=0.5,
        lpips_weight=0.25,
        lpips_alexnet=str(lpips_files[0]),
        lpips_linear=str(lpips_files[1]),
    )
    full = AutoencoderTask(cfg, bank, 4)
    total, metrics = full.loss(model, batch, "cpu")
    assert set(metrics) == {"mse_top", "grad_l1", "lpips_top"}
    expected = mse.item() + 0.5 * metrics["grad_l1"] + 0.25 * metrics["lpips_top"]
    assert abs(total.item() - expected) < 1e-5
    total.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert not any(p.requires_grad for p in full.perceptual.parameters())
