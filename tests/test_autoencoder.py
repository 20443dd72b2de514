from dataclasses import replace

import pytest
import torch

from millivid.autoencoder.model import HierarchicalAutoencoder
from millivid.autoencoder.task import AutoencoderTask
from millivid.presets import PRESETS
from millivid.train import TrainConfig, train

TINY = PRESETS["tiny"].ae


def frames(n=4, size=32, seed=0):
    return torch.randint(
        0, 256, (n, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("name", ["tiny", "mini", "paper"])
def test_token_counts_per_level(name):
    cfg = PRESETS[name].ae
    model = HierarchicalAutoencoder(replace(cfg, depth=1, width=32, heads=1))
    assert tuple(model.tokens_per_level()) == cfg.tokens_per_frame()
    assert (
        model.tokens_per_level()
        == {"tiny": [16, 4, 1], "mini": [64, 16, 4, 1], "paper": [256, 64, 16, 4]}[name]
    )


@pytest.mark.parametrize("kind", ["hierarchical", "cascaded", "pooled"])
def test_encode_shapes_and_decode_every_level_to_a_frame(kind):
    model = HierarchicalAutoencoder(replace(TINY, kind=kind)).eval()
    latents = model.encode(frames())
    assert [tuple(z.shape) for z in latents] == [(4, 4, 4, 4), (4, 2, 2, 4), (4, 1, 1, 4)]
    for level, z in enumerate(latents):
        out = model.decode(z, level)
        assert out.shape == (4, 32, 32, 3) and out.dtype == torch.uint8


def test_cascaded_coarse_levels_are_mean_pooled_level0():
    model = HierarchicalAutoencoder(replace(TINY, kind="cascaded")).eval()
    raw = model.encode_raw(frames().permute(0, 3, 1, 2).float() / 127.5 - 1)
    assert torch.allclose(raw[1], raw[0].reshape(4, 2, 2, 2, 2, 4).mean((2, 4)), atol=1e-6)
    assert torch.allclose(raw[2], raw[0].mean((1, 2), keepdim=True), atol=1e-6)


def test_pooled_kind_keeps_the_hierarchical_level0_and_pools_it_for_the_rest(tmp_path):
    torch.manual_seed(0)
    hier = HierarchicalAutoencoder(TINY).eval()
    pooled = HierarchicalAutoencoder(replace(TINY, kind="pooled")).eval()
    pooled.load_state_dict(hier.state_dict())
    images = frames().permute(0, 3, 1, 2).float() / 127.5 - 1
    h, p = hier.encode_raw(images), pooled.encode_raw(images)
    assert torch.equal(h[0], p[0])  # the encoder reads the whole pyramid, as trained
    assert torch.allclose(p[1], p[0].reshape(4, 2, 2, 2, 2, 4).mean((2, 4)), atol=1e-6)
    assert torch.allclose(p[2], p[0].mean((1, 2), keepdim=True), atol=1e-6)
    assert not torch.allclose(h[1], p[1])
    # derived from a trained hierarchical autoencoder, never trained itself
    from millivid.jobs.autoencoder import train_autoencoder

    cfg = replace(PRESETS["tiny"], ae=replace(TINY, kind="pooled"))
    with pytest.raises(ValueError, match="ae.kind = pooled is not trained"):
        train_autoencoder(cfg, tmp_path / "data", tmp_path / "run")


def test_other_levels_are_zeroed_in_the_decoder():
    torch.manual_seed(0)
    model = HierarchicalAutoencoder(TINY).eval()
    for block in model.decoder:  # make the AdaLN path non-trivial
        torch.nn.init.normal_(block.modulation.weight, std=0.02)
    images = frames().permute(0, 3, 1, 2).float() / 127.5 - 1
    tokens = model.tokens_of(model.encode_raw(images))
    level = torch.full((4,), 1)
    out = model.decode_tokens(tokens, level)[0]
    changed = tokens.clone()
    changed[:, :16] += torch.randn(4, 16, 4) * 10  # level-0 tokens
    changed[:, 20:] -= 5.0  # level-2 token
    assert torch.allclose(model.decode_tokens(changed, level)[0], out, atol=1e-6)
    changed[:, 16:20] += 1.0  # level-1 tokens do matter
    assert not torch.allclose(model.decode_tokens(changed, level)[0], out, atol=1e-4)


def test_decode_rejects_wrong_latent_shape():
    model = HierarchicalAutoencoder(TINY)
    with pytest.raises(ValueError, match=r"decode level 1: expected latents \[B, 2, 2, 4\]"):
        model.decode(torch.zeros(1, 4, 4, 4), 1)
    with pytest.raises(ValueError, match="frames: expected uint8"):
        model.encode(torch.zeros(1, 16, 16, 3, dtype=torch.uint8))


def test_calibrate_normalizes_latents():
    model = HierarchicalAutoencoder(TINY).eval()
    x = frames(64)
    model.calibrate(x)
    for z in model.encode(x):
        assert z.mean((0, 1, 2)).abs().max() < 1e-3
        assert (z.std((0, 1, 2), unbiased=False) - 1).abs().max() < 1e-3


def test_training_drives_reconstruction_loss_down(tmp_path):
    # a bank of smooth frames: something a tiny model can learn in a few dozen steps
    g = torch.Generator().manual_seed(1)
    base = torch.rand(32, 3, 4, 4, generator=g)
    bank = (
        (torch.nn.functional.interpolate(base, size=32, mode="bilinear") * 255)
        .byte()
        .permute(0, 2, 3, 1)
    )
    task = AutoencoderTask(TINY, bank.contiguous(), batch_size=16)
    cfg = TrainConfig(
        steps=60, batch_size=16, lr=3e-3, warmup_steps=5, checkpoint_every=100, log_every=1
    )
    train(task, cfg, tmp_path, config={"stage": "test"}, device="cpu", show_progress=False)
    import json

    losses = [
        json.loads(line)["loss"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])


def test_shipped_mini_autoencoder_reconstructs_world_frames():
    """The shipped C = 16 autoencoder (of the mini video models) loads and reconstructs a
    test-world video (on this video, 8 frames: 32.8 dB at level 0)."""
    from millivid.jobs.autoencoder import load_autoencoder, reconstruction_psnr
    from millivid.world import TEST_SEED_OFFSET, make_videos

    ae = load_autoencoder("checkpoints/mini/ae")
    world = replace(PRESETS["mini"].world, frames=48)
    frames = make_videos([TEST_SEED_OFFSET + 7], world).video[0, ::6]
    psnr = reconstruction_psnr(ae, frames)
    assert psnr[0] > 30 and psnr[3] > 25, psnr
    assert psnr == sorted(psnr, reverse=True)  # finer levels reconstruct better


def test_all_levels_decodes_every_level_and_averages_their_losses():
    """``ae.all_levels``: one encoder pass, every level decoded; the loss is the mean of the
    losses of decoding each level alone."""
    torch.manual_seed(0)
    model = HierarchicalAutoencoder(TINY).eval()
    for block in model.decoder:
        torch.nn.init.normal_(block.modulation.weight, std=0.02)
    images = frames().permute(0, 3, 1, 2).float() / 127.5 - 1
    every = model(images, None)
    for lvl in range(TINY.levels):
        alone = model(images, torch.full((4,), lvl))
        for got, want in zip(every, alone, strict=True):
            torch.testing.assert_close(got[4 * lvl : 4 * (lvl + 1)], want, atol=1e-5, rtol=1e-5)
    batch = (frames(), torch.zeros(4, dtype=torch.long))
    task_all = AutoencoderTask(replace(TINY, all_levels=True), batch[0], 4)
    task_one = AutoencoderTask(TINY, batch[0], 4)
    with torch.no_grad():
        loss_all = task_all.loss(model, batch, "cpu")[0]
        per_level = [
            task_one.loss(model, (batch[0], torch.full((4,), lvl)), "cpu")[0]
            for lvl in range(TINY.levels)
        ]
    torch.testing.assert_close(loss_all, torch.stack(per_level).mean(), atol=1e-5, rtol=1e-5)


def test_ae_pooled_derives_from_the_shipped_autoencoder_and_refuses_other_kinds(tmp_path, capsys):
    from millivid.cli import main
    from millivid.jobs.autoencoder import load_autoencoder

    data = tmp_path / "data"
    args = ["data", "make", "--preset", "mini", "--videos", "1", "--out", str(data)]
    assert main([*args, "--device", "cpu"]) == 0
    out = tmp_path / "pooled"
    ae = "checkpoints/mini/ae"
    assert main(["ae", "pooled", "--ckpt", ae, "--data", str(data), "--out", str(out)]) == 0
    hier, pooled = load_autoencoder(ae), load_autoencoder(out)
    assert pooled.cfg.kind == "pooled"
    x = frames(8, size=64)
    with torch.no_grad():
        h, p = hier.encode(x), pooled.encode(x)
    assert torch.equal(h[0], p[0]) and not torch.allclose(h[3], p[3])
    capsys.readouterr()
    again = ["ae", "pooled", "--ckpt", str(out), "--data", str(data), "--out", str(tmp_path / "x")]
    assert main(again) == 1
    assert "a pooled autoencoder; ae.kind = pooled is derived from a hierarchical one" in (
        capsys.readouterr().err
    )
