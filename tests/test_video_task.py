import pytest
import torch

from millivid.jobs.video_task import InMemoryLatents, VideoTask, sequence_length, target_noise
from millivid.plan import METHODS
from millivid.presets import load_preset

SHAPES = [(4, 4), (2, 2), (1, 1)]


def synthetic_latents(videos=6, frames=64, channels=4, seed=0):
    """A scene shared by all videos (learnable from positions alone) plus a static per-video
    part and a slow wobble (predictable from the context)."""
    gen = torch.Generator().manual_seed(seed)
    shared = [torch.randn(1, h, w, channels, generator=gen) for h, w in SHAPES]
    out = []
    for _ in range(videos):
        wobble = 0.3 * torch.sin(torch.arange(frames) / 5.0 + torch.rand(1, generator=gen) * 6)
        levels = [
            s + 0.5 * torch.randn(s.shape, generator=gen) + wobble.view(-1, 1, 1, 1) for s in shared
        ]
        actions = torch.randint(0, 3, (frames,), generator=gen)
        out.append((levels, actions))
    return InMemoryLatents(out)


def tiny_config(*overrides):
    return load_preset("tiny", ["video_train.batch_size=8", *overrides])


def fixed_loss(task, model, batch):
    with torch.no_grad():
        return float(task.loss(model, batch, "cpu")[0])


@pytest.mark.parametrize("method", sorted(METHODS))
def test_training_drives_the_loss_down(method):
    torch.manual_seed(0)
    cfg = tiny_config("diffusion.context_dropout=0.0")
    task = VideoTask(cfg, method, synthetic_latents())
    model = task.build_model()
    held = task.batch(0, torch.Generator().manual_seed(123))
    held.t = torch.linspace(0.05, 0.95, held.t.shape[0])
    before = fixed_loss(task, model, held)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    for step in range(150):
        loss, _ = task.loss(model, task.batch(step, gen), "cpu")
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss(task, model, held)
    assert before > 0.5
    assert after < 0.6 * before, (method, before, after)


def test_context_dropout_rate_is_about_the_configured_probability():
    task = VideoTask(tiny_config("video_train.batch_size=4"), "millivid", synthetic_latents())
    gen = torch.Generator().manual_seed(0)
    drops = torch.cat([task.batch(i, gen).dropped for i in range(250)])
    assert len(drops) == 1000
    rate = drops.float().mean().item()
    assert 0.07 < rate < 0.13, rate  # binomial std ~0.0095


def test_dropped_elements_have_no_valid_context_and_loss_still_finite():
    cfg = tiny_config("diffusion.context_dropout=0.5")
    task = VideoTask(cfg, "millivid", synthetic_latents())
    batch = task.batch(0, torch.Generator().manual_seed(3))
    tok = batch.tokens
    assert batch.dropped.any() and (~batch.dropped).any()
    assert not tok.valid[batch.dropped, : tok.context_slots].any()
    loss, _ = task.loss(task.build_model(), batch, "cpu")
    assert torch.isfinite(loss)


def test_batches_are_deterministic_in_the_generator():
    task = VideoTask(tiny_config(), "framepack", synthetic_latents())
    a = task.batch(5, torch.Generator().manual_seed(9))
    b = task.batch(5, torch.Generator().manual_seed(9))
    assert torch.equal(a.tokens.values, b.tokens.values) and torch.equal(a.noise, b.noise)
    assert torch.equal(a.tokens.frame, b.tokens.frame) and torch.equal(a.t, b.t)
    assert task.items_per_batch == 8 * sequence_length(task.config, "framepack")


def test_framepack_batches_hand_over_only_real_channels():
    task = VideoTask(tiny_config(), "framepack", synthetic_latents())
    batch = task.batch(0, torch.Generator().manual_seed(4))
    assert batch.tokens.values.dim() == 1  # compact: FramePack's padding is not handed over
    dense = batch.to("cpu")
    assert dense.tokens.values.shape == (8, sequence_length(task.config, "framepack"), batch.cin)
    assert batch.tokens.values.numel() < dense.tokens.values.numel()
    assert torch.equal(dense.tokens.values[dense.tokens.channel_mask()], batch.tokens.values)
    assert not dense.tokens.values[~dense.tokens.channel_mask()].any()
    loss, _ = task.loss(task.build_model(), batch, "cpu")
    assert torch.isfinite(loss)


def test_latents_of_another_width_name_the_override():
    """Latents of a C = 8 autoencoder under a C = 4 config: the error says what to set, before
    any training starts."""
    with pytest.raises(ValueError, match=r"8 channels but ae.channels = 4.*ae.channels=8"):
        VideoTask(tiny_config(), "millivid", synthetic_latents(channels=8))


def test_every_video_is_loaded_once_before_training(monkeypatch):
    """The task loads (and checks) every video when it is built, so DataLoader workers forked
    later share that copy instead of each reading the whole cache again."""
    source = synthetic_latents(videos=5)
    loads = []
    real = source.load
    monkeypatch.setattr(source, "load", lambda i: loads.append(i) or real(i))
    VideoTask(tiny_config(), "millivid", source)
    assert sorted(loads) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("method", ["millivid", "framepack", "mirrored-framepack"])
def test_noise_is_drawn_for_the_real_target_channels_only(method):
    """Mirrored FramePack's coarse targets are patchified (up to 4^(L-1) C channels) beside
    level-0 targets: the batch draws and hands over noise only for each target's real channels,
    and the loss spreads it over them in order, zero in the padding."""
    task = VideoTask(tiny_config(), method, synthetic_latents())
    batch = task.batch(0, torch.Generator().manual_seed(4)).to("cpu")
    tok = batch.tokens
    mask = tok.channel_mask()[:, tok.context_slots :]
    real = mask.flatten(1).sum(1)
    assert batch.noise.shape == (tok.batch, int(real.max()))
    full = target_noise(batch.noise, mask)
    for b in range(tok.batch):
        assert torch.equal(full[b][mask[b]], batch.noise[b, : int(real[b])])
        assert not full[b][~mask[b]].any()
    if method == "mirrored-framepack":  # its targets mix widths: most of [St, Cin] is padding
        assert batch.noise.numel() < mask.numel() / 2


@pytest.mark.parametrize("method", ["millivid", "framepack", "fullres", "mirrored-framepack"])
def test_loss_by_token_counts_each_target_token_once(method):
    """By value every real latent value counts once, by token every target token does: the same
    where the target tokens share one width; for mirrored FramePack (patchified coarse targets
    of up to 4^(L-1) C values beside level-0 ones) they differ, and ``kept_loss`` is the kept
    level-0 targets' MSE per value either way."""
    by_value = VideoTask(tiny_config(), method, synthetic_latents())
    by_token = VideoTask(tiny_config("diffusion.loss_unit=token"), method, synthetic_latents())
    batch = by_value.batch(0, torch.Generator().manual_seed(2))

    def zero(tokens, t):  # a model that predicts v = 0: the loss is the mean of v^2
        return torch.zeros(tokens.batch, tokens.target_slots, tokens.values.shape[-1])

    with torch.no_grad():
        value, value_metrics = by_value.loss(zero, batch, "cpu")
        token, token_metrics = by_token.loss(zero, batch, "cpu")
    if method != "mirrored-framepack":
        torch.testing.assert_close(value, token)
        assert "kept_loss" not in value_metrics
        return
    assert abs(float(value) - float(token)) > 1e-3
    tok = batch.to("cpu").tokens
    cs = tok.context_slots
    real = tok.channel_mask()[:, cs:]
    level = tok.level[:, cs]
    a, s = by_value.config.diffusion.target_alpha_sigma(batch.t, level)
    v = a.view(-1, 1, 1) * target_noise(batch.noise, real) - s.view(-1, 1, 1) * tok.target_values
    kept = (tok.level[:, cs:] == level.unsqueeze(1)).unsqueeze(-1) & real
    assert (tok.kernel[:, cs:][kept.any(-1)] == 0).all()  # the kept targets are level-0 frames
    expected = (v**2)[kept].mean()
    torch.testing.assert_close(value_metrics["kept_loss"], expected)
    torch.testing.assert_close(token_metrics["kept_loss"], expected)
    per_token = ((v**2) * real).sum(-1) / real.sum(-1)
    torch.testing.assert_close(token, per_token[real.any(-1)].mean())


def test_an_unknown_loss_unit_is_refused_by_name():
    with pytest.raises(ValueError, match="diffusion.loss_unit = 'frame'"):
        tiny_config("diffusion.loss_unit=frame")


def test_the_by_token_variant_differs_from_mirrored_framepack_in_the_loss_unit_only():
    from dataclasses import replace

    from millivid.variants import variant_config

    cfg = load_preset("mini")
    (m1, c1), (m2, c2) = (
        variant_config(cfg, "mirrored-framepack-memory-token"),
        variant_config(cfg, "mirrored-framepack-memory"),
    )
    assert m1 == m2 == "mirrored-framepack"
    assert (c1.diffusion.loss_unit, c2.diffusion.loss_unit) == ("token", "value")
    assert replace(c1, diffusion=c2.diffusion) == c2
