"""LPIPS, DINOv2, LightGlue matches, FID and FVD with weights generated in the published formats.

No published weights exist here, so each test writes a file with the real key names (random
values) or a tiny TorchScript module with the standard call signature, and checks loading, the
metric's invariants, and that a missing or wrong file gives an error naming it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from millivid.evaluate.config import EvalConfig
from millivid.evaluate.dino import DinoViT
from millivid.evaluate.frechet import GaussianStats, frechet_distance
from millivid.evaluate.suite import MetricSuite
from millivid.weights.files import MissingWeightsError, env_var, weight_path
from millivid.weights.lpips import LPIPS, AlexFeatures


@pytest.fixture(scope="module")
def frames():
    from millivid.presets import PRESETS
    from millivid.world import make_videos

    gt = make_videos([5], PRESETS["tiny"].world).video[0, :16]
    shifted = torch.roll(gt, 3, dims=2)
    noise = torch.randint(
        0, 256, gt.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return gt, shifted, noise


class TinyInception(torch.nn.Module):
    """Same call as inception-2015-12-05.pt: (images 0..255 [N,3,H,W], return_features) -> [N,D]."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = F.interpolate(x / 255.0, size=(32, 32), mode="bilinear", align_corners=False)
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


class TinyI3D(torch.nn.Module):
    """Same call as i3d_torchscript.pt: (videos [-1,1] [N,3,T,H,W], rescale, resize, return_features)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 10, 3, padding=1)

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3, 4))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    alex = {k: v for k, v in AlexFeatures().state_dict().items()}
    alex["classifier.1.weight"] = torch.zeros(4, 4)  # torchvision file also has the classifier
    torch.save(alex, d / "alexnet-owt-7be5be79.pth")
    lins = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1)
        for i, c in enumerate((64, 192, 384, 256, 256))
    }
    torch.save(lins, d / "alex.pth")
    torch.save(
        DinoViT(dim=64, depth=2, patch=14, grid=4).state_dict(), d / "dinov2_vits14_pretrain.pth"
    )
    torch.jit.script(TinyInception()).save(str(d / "inception-2015-12-05.pt"))
    torch.jit.script(TinyI3D()).save(str(d / "i3d_torchscript.pt"))
    return d


def _cfg(d, **kw):
    return EvalConfig(
        alexnet_weights=str(d / "alexnet-owt-7be5be79.pth"),
        lpips_weights=str(d / "alex.pth"),
        dino_weights=str(d / "dinov2_vits14_pretrain.pth"),
        fid_weights=str(d / "inception-2015-12-05.pt"),
        fvd_weights=str(d / "i3d_torchscript.pt"),
        fvd_clip=4,
        **kw,
    )


def test_lpips_zero_on_identical_and_ordered(weights, frames):
    gt, shifted, noise = frames
    model = LPIPS.from_files(weights / "alexnet-owt-7be5be79.pth", weights / "alex.pth")
    assert torch.allclose(model(gt, gt), torch.zeros(len(gt)), atol=1e-6)
    d_shift, d_noise = model(shifted, gt).mean(), model(noise, gt).mean()
    assert 0 < d_shift < d_noise


def test_dino_cosine_and_ordering(weights, frames):
    gt, shifted, noise = frames
    suite = MetricSuite(_cfg(weights))
    out = suite.per_frame(["dino"], torch.cat([gt, shifted, noise]), torch.cat([gt, gt, gt]))
    v = np.array(out["dino"]).reshape(3, -1).mean(1)
    assert v[0] == pytest.approx(1.0, abs=1e-5)
    assert v[0] > v[1] > v[2]


def test_dino_loads_official_key_layout(weights):
    state = torch.load(weights / "dinov2_vits14_pretrain.pth", weights_only=True)
    for key in (
        "cls_token",
        "pos_embed",
        "mask_token",
        "patch_embed.proj.weight",
        "blocks.0.attn.qkv.weight",
        "blocks.1.ls2.gamma",
        "blocks.0.mlp.fc1.bias",
        "norm.weight",
    ):
        assert key in state
    model = DinoViT.from_file(weights / "dinov2_vits14_pretrain.pth")
    assert len(model.blocks) == 2 and model(torch.zeros(2, 40, 40, 3, dtype=torch.uint8)).shape == (
        2,
        64,
    )


def test_fid_fvd_by_horizon_ordering(weights, frames):
    from millivid.evaluate.runner import _add_set_features, _merge_set_metrics

    gt, shifted, noise = frames

    def toward_noise(a: float) -> torch.Tensor:  # the distribution moved a fraction a to noise
        return ((1 - a) * gt.float() + a * noise.float()).round().to(torch.uint8)

    cfg = _cfg(weights, horizon_ends=(16,), horizon_names=("short",))
    suite = MetricSuite(cfg)
    scores = {}
    for name, pred in (
        ("same", gt),
        ("shift", shifted),
        ("mild", toward_noise(0.2)),
        ("strong", toward_noise(0.6)),
        ("noise", noise),
    ):
        acc, horizons = {}, {}
        _add_set_features(suite, ("fid", "fvd"), acc, pred, gt, cfg)
        _merge_set_metrics(horizons, acc)
        scores[name] = horizons["short"]
    assert scores["same"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert scores["same"]["fvd"] == pytest.approx(0.0, abs=1e-6)
    for m in ("fid", "fvd"):
        assert scores["shift"][m] < scores["noise"][m]
        # shifted further -> strictly larger distance
        assert scores["same"][m] < scores["mild"][m] < scores["strong"][m] < scores["noise"][m]


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (4000, 3))
    b = rng.normal(2, 1, (4000, 3))
    assert frechet_distance(a, b) == pytest.approx(12.0, rel=0.05)  # |Δμ|² = 3·4, equal covariances
    s = GaussianStats()
    s.add(a[:1000])
    s.add(a[1000:])
    mu, cov = s.mean_cov()
    assert np.allclose(cov, np.cov(a, rowvar=False)) and np.allclose(mu, a.mean(0))
    d = [frechet_distance(a, a + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert d[0] < d[1] < d[2] < d[3]  # |Δμ|² = 3·shift²: 0, 0.75, 3, 12
    assert d[1:] == pytest.approx([0.75, 3.0, 12.0], rel=1e-6)


def test_frechet_distance_of_identical_sets_is_not_negative():
    # badly scaled features: before the clamp this gave -8.7e-11 from round-off
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (64, 16)) * rng.uniform(0.1, 100, 16)
    d = frechet_distance(a, a)
    assert d >= 0.0 and d == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def matcher(tmp_path_factory):
    """A KeypointMatcher loaded from random DISK/LightGlue weights in the published layouts."""
    kf = pytest.importorskip("kornia.feature", reason="kornia (optional 'metrics' extra) missing")
    from millivid.evaluate.keypoints import KeypointMatcher

    d = tmp_path_factory.mktemp("keypoints")
    torch.manual_seed(0)
    torch.save({"extractor": kf.DISK().state_dict()}, d / "depth-save.pth")
    glue = kf.LightGlue(features=None, input_dim=128).state_dict()
    published = {}
    for k, v in glue.items():  # back to the published layout: self_attn.i / cross_attn.i
        if k == "confidence_thresholds":
            continue
        for i in range(9):
            k = k.replace(f"transformers.{i}.self_attn.", f"self_attn.{i}.")
            k = k.replace(f"transformers.{i}.cross_attn.", f"cross_attn.{i}.")
        published[k] = v
    torch.save(published, d / "disk_lightglue.pth")
    return KeypointMatcher.from_files(d / "depth-save.pth", d / "disk_lightglue.pth")


def test_lightglue_matches_with_generated_weights(matcher, frames):
    from millivid.evaluate.keypoints import KeypointMatcher

    gt, _, _ = frames
    counts = matcher(gt[:2], gt[:2])
    assert counts.shape == (2,) and torch.all(counts >= 0)
    strict = KeypointMatcher(matcher.disk, matcher.lightglue, confidence=1.01)
    assert torch.all(strict(gt[:2], gt[:2]) == 0)  # no confidence exceeds 1


def test_lightglue_confidence_threshold_filters_matches(matcher, frames):
    """The deterministic part of the 'matches' metric: a higher confidence keeps fewer matches.

    With random weights, "self > shifted > unrelated" says nothing about the metric (match
    confidences are arbitrary), so ordering by content is not tested here; it needs the published
    DISK/LightGlue files.
    """
    from millivid.evaluate.keypoints import KeypointMatcher

    gt, _, _ = frames
    counts = {
        c: KeypointMatcher(matcher.disk, matcher.lightglue, confidence=c)(gt[:2], gt[:2])
        for c in (0.0, 0.5, 0.99)
    }
    assert torch.all(counts[0.0] >= counts[0.5]) and torch.all(counts[0.5] >= counts[0.99])
    assert counts[0.0].sum() > counts[0.99].sum()  # some match exists, and the threshold drops it


def test_missing_and_wrong_weight_files_are_named(tmp_path, weights, monkeypatch):
    monkeypatch.delenv(env_var("lpips"), raising=False)
    monkeypatch.setenv("MILLIVID_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(
        MissingWeightsError,
        match="alex.pth.*--lpips-weights.*MILLIVID_LPIPS_WEIGHTS.*millivid weights fetch lpips",
    ):
        weight_path("lpips", "")
    missing = tmp_path / "nope" / "i3d_torchscript.pt"
    with pytest.raises(MissingWeightsError, match=str(missing)):
        weight_path("fvd", str(missing))
    monkeypatch.setenv(env_var("fid"), str(weights / "inception-2015-12-05.pt"))
    assert weight_path("fid", "") == weights / "inception-2015-12-05.pt"
    bad = tmp_path / "alex.pth"
    torch.save({"lin0.model.1.weight": torch.zeros(1, 3, 1, 1)}, bad)
    with pytest.raises(ValueError, match=str(bad)):
        LPIPS.from_files(weights / "alexnet-owt-7be5be79.pth", bad)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=str(garbage)):
        MetricSuite(EvalConfig(fid_weights=str(garbage))).model("fid")
    with pytest.raises(MissingWeightsError, match="dinov2_vits14_pretrain.pth"):
        MetricSuite(EvalConfig(dino_weights=str(tmp_path / "x.pth"))).load_all(["psnr", "dino"])


def test_help_and_docs_say_that_the_torchscript_detectors_run_code(capsys, monkeypatch):
    from pathlib import Path

    from millivid.cli import main

    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    lines = capsys.readouterr().out.splitlines()
    for flag in ("--fid-weights", "--fvd-weights"):
        line = next(x for x in lines if x.strip().startswith(flag))
        assert "a TorchScript file: loading it runs the code it holds" in line
    docs = (Path(__file__).parents[1] / "docs" / "EVALUATION.md").read_text()
    assert "The FID and FVD files are TorchScript: loading one runs the code it holds" in docs
