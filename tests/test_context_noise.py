"""Conditioning augmentation (``diffusion.context_noise``): which tokens are noised, that the model
is told the time (and nothing changes at time 0), training batches and seeded rollouts."""

import random
from dataclasses import replace

import pytest
import torch

from millivid.diffusion import COSINE
from millivid.diffusion.config import DiffusionConfig
from millivid.jobs.video_task import InMemoryLatents, VideoTask, build_video_model
from millivid.model.packing import pack
from millivid.model.tokens import augmented_context, coarse_context, noise_context
from millivid.plan import make_plan, sample_training_step
from millivid.presets import load_preset
from millivid.rollout.dit_denoiser import DiTDenoiser
from millivid.rollout.request import check_sampler

SHAPES = [(4, 4), (2, 2), (1, 1)]


def video(frames=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    levels = [torch.randn(frames, h, w, 4, generator=gen) for h, w in SHAPES]
    return levels, torch.randint(0, 3, (frames,), generator=gen)


def level0_step(cfg):
    """A millivid level-0 step: its context holds the coarser levels of its target frames."""
    return next(s for s in make_plan("millivid", cfg.plan, 20, 60) if s.target.level == 0)


def model_off_zero_init(cfg, attention="full"):
    torch.manual_seed(0)
    cfg = replace(cfg, model=replace(cfg.model, attention=attention))
    model = build_video_model(cfg, "millivid").eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    return model


def test_only_context_coarser_than_the_target_is_noised():
    cfg = load_preset("tiny")
    levels, actions = video()
    step = level0_step(cfg)
    tokens = pack([x[None] for x in levels], actions[None], step, "levels")
    coarse = coarse_context(tokens)[0]
    sc = tokens.context_slots
    assert coarse.any() and not coarse[sc:].any()
    assert (tokens.level[0][:sc][coarse[:sc]] > 0).all()
    assert not coarse[:sc][tokens.level[0][:sc] == 0].any()  # the level-0 context stays clean
    noise = torch.randn(tokens.values.shape)
    same = noise_context(tokens, torch.zeros(1), noise, COSINE)
    torch.testing.assert_close(same.values, tokens.values)
    noised = noise_context(tokens, torch.full((1,), 0.7), noise, COSINE)
    changed = (noised.values != tokens.values).any(-1)[0]
    assert torch.equal(changed, coarse) and noised.context_time.tolist() == [pytest.approx(0.7)]
    assert torch.equal(noised.noised[0], coarse) and not same.noised.any()
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        noise_context(tokens, torch.full((1,), 1.5), noise, COSINE)


@pytest.mark.parametrize("attention", ["full", "context-causal"])
def test_the_model_is_told_the_time_and_time_zero_changes_nothing(attention):
    cfg = load_preset("tiny")
    levels, actions = video()
    tokens = pack([x[None] for x in levels], actions[None], level0_step(cfg), "levels")
    model = model_off_zero_init(cfg, attention)
    t = torch.full((1,), 0.4)
    with torch.no_grad():
        base = model(tokens, t)
        # same values, told that the coarse context is noised to 0.6
        told = replace(tokens, context_time=torch.full((1,), 0.6), noised=coarse_context(tokens))
        assert not torch.allclose(model(told, t), base)
        untold = replace(tokens, context_time=torch.full((1,), 0.6))  # no token marked
        torch.testing.assert_close(model(untold, t), base)
        clean_rows = replace(tokens, context_time=torch.zeros(1))
        torch.testing.assert_close(model(clean_rows, t), base)
        if attention == "context-causal":  # the K/V cache path sees the same conditions
            fast = model.forward_targets(told, t, model.encode_context(told))
            torch.testing.assert_close(fast, model(told, t), rtol=1e-4, atol=1e-5)


def test_training_batches_noise_the_coarse_context_up_to_the_limit():
    base = load_preset("tiny", ["video_train.batch_size=8", "diffusion.context_dropout=0"])
    source = InMemoryLatents([video(seed=i) for i in range(2)])
    plain = VideoTask(base, "millivid", source).batch(0, torch.Generator().manual_seed(0))
    assert not plain.tokens.context_time.any()
    cfg = replace(base, diffusion=replace(base.diffusion, context_noise=0.3))
    task = VideoTask(cfg, "millivid", source)
    batch = task.batch(0, torch.Generator().manual_seed(0))
    times = batch.tokens.context_time
    assert times.shape == (8,) and (times > 0).all() and (times <= 0.3).all()
    coarse = coarse_context(batch.tokens)
    assert torch.equal(batch.tokens.values[~coarse], plain.tokens.values[~coarse])
    assert not torch.equal(batch.tokens.values[coarse], plain.tokens.values[coarse])
    loss, _ = task.loss(task.build_model(), batch, "cpu")
    assert torch.isfinite(loss)
    bad = replace(base, diffusion=replace(base.diffusion, context_noise=2.0))
    with pytest.raises(ValueError, match="diffusion.context_noise = 2.0"):
        VideoTask(bad, "millivid", source)


def test_rollouts_noise_the_generated_coarse_context_the_same_way_each_time():
    cfg = load_preset("tiny")
    levels, actions = video()
    step = level0_step(cfg)
    context = [levels[s.level][None, s.start : s.stop] for s in step.context]
    noise = torch.randn(1, step.target.frames, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    model = model_off_zero_init(cfg)
    outputs = {}
    for amount in (0.0, 0.3, 0.3):
        sampler = replace(cfg.diffusion, sample_steps=2, sample_context_noise=amount)
        denoiser = DiTDenoiser(model, "levels", SHAPES, sampler, compile=False)
        outputs.setdefault(amount, []).append(denoiser(step, context, actions[None], noise))
    torch.testing.assert_close(outputs[0.3][0], outputs[0.3][1])  # seeded by the step
    assert not torch.allclose(outputs[0.0][0], outputs[0.3][0])
    with pytest.raises(ValueError, match="diffusion.sample_context_noise = 1.2"):
        check_sampler(DiffusionConfig(sample_context_noise=1.2))
    assert sample_training_step("millivid", cfg.plan, 64, random.Random(0)).target.level >= 0


def test_scope_all_noises_every_context_token_dense_or_compact():
    cfg = load_preset("tiny")
    levels, actions = video()
    tokens = pack([x[None] for x in levels], actions[None], level0_step(cfg), "levels")
    sc = tokens.context_slots
    noise = torch.randn(tokens.values.shape)
    noised = noise_context(tokens, torch.full((1,), 0.5), noise, COSINE, "all")
    changed = (noised.values != tokens.values).any(-1)[0]
    assert changed[:sc].all() and not changed[sc:].any()
    assert torch.equal(noised.noised, augmented_context(tokens, "all"))
    with pytest.raises(ValueError, match="context_noise_scope = 'some'"):
        noise_context(tokens, torch.full((1,), 0.5), noise, COSINE, "some")
    # FramePack's compact values (real channels only) are noised like their dense form
    step = next(s for s in make_plan("framepack", cfg.plan, 20, 60) if s.context)
    fp = pack([x[None] for x in levels], actions[None], step, "patchify", compact=True)
    assert fp.values.dim() == 1 and fp.kernel.max() > 0  # compact, with compressed frames
    cin = fp.channels * 4 ** int(fp.kernel.max())
    dense = fp.dense(cin)
    eps = torch.randn(dense.values.shape)
    want = noise_context(dense, torch.full((1,), 0.3), eps, COSINE, "all")
    got = noise_context(fp, torch.full((1,), 0.3), eps[dense.channel_mask()], COSINE, "all")
    torch.testing.assert_close(got.dense(cin).values, want.values)
    assert torch.equal(got.noised, want.noised) and want.noised[0, : fp.context_slots].all()


@pytest.mark.parametrize("method", ["fullres", "framepack"])
def test_training_batches_of_the_full_resolution_methods_noise_all_their_context(method):
    base = load_preset("tiny", ["video_train.batch_size=4", "diffusion.context_dropout=0"])
    source = InMemoryLatents([video(seed=i) for i in range(2)])
    plain = VideoTask(base, method, source).batch(0, torch.Generator().manual_seed(0))
    diffusion = replace(base.diffusion, context_noise=0.4, context_noise_scope="all")
    task = VideoTask(replace(base, diffusion=diffusion), method, source)
    batch = task.batch(0, torch.Generator().manual_seed(0))
    cin = task.context_source.token_channels(4, len(SHAPES))
    a, b = plain.tokens.dense(cin), batch.tokens.dense(cin)
    sc = a.context_slots
    assert batch.tokens.noised[:, :sc].all() and not batch.tokens.noised[:, sc:].any()
    assert not torch.equal(a.values[:, :sc], b.values[:, :sc])
    torch.testing.assert_close(a.values[:, sc:], b.values[:, sc:])
    assert torch.isfinite(task.loss(task.build_model(), batch, "cpu")[0])
    bad = replace(base, diffusion=replace(diffusion, context_noise_scope="recent"))
    with pytest.raises(ValueError, match="context_noise_scope = 'recent'"):
        VideoTask(bad, method, source)


def test_all_context_variants_differ_from_their_recipe_in_the_noise_only():
    from millivid.variants import variant_config

    cfg = load_preset("mini")
    for noised, plain in (
        ("millivid-memory-aug-all", "millivid-memory-aug"),
        ("framepack-memory-aug", "framepack-memory"),
        ("fullres-memory-aug", "fullres-memory"),
    ):
        (m1, c1), (m2, c2) = variant_config(cfg, noised), variant_config(cfg, plain)
        d = c1.diffusion
        assert m1 == m2 and (d.context_noise, d.sample_context_noise) == (0.5, 0.1)
        assert d.context_noise_scope == "all" and c2.diffusion.context_noise_scope == "coarse"
        assert replace(c1, diffusion=c2.diffusion) == c2, noised


def test_the_fig6_ablations_differ_from_the_recipe_in_method_and_autoencoder_only():
    from millivid.variants import VARIANTS, variant_config

    cfg = load_preset("mini")
    for variant, reference, method, kind in (
        ("cascaded-memory-aug", "millivid-memory-aug", "cascaded", "cascaded"),
        ("upscale-own-level-memory", "millivid-own-level-memory", "upscale", "hierarchical"),
        ("cascaded-own-level-memory", "millivid-own-level-memory", "cascaded", "cascaded"),
    ):
        m, c = variant_config(cfg, variant)
        _, recipe = variant_config(cfg, reference)
        assert (m, c.ae.kind, VARIANTS[variant].autoencoder) == (method, kind, kind)
        assert replace(c, ae=recipe.ae) == recipe, variant


def test_framepack_rollout_steps_noise_all_their_context():
    """FramePack's tokens are wider than its targets (patchified context): the context noise
    must not change the width the targets are read back with."""
    cfg = load_preset("tiny")
    levels, actions = video()
    step = next(s for s in make_plan("framepack", cfg.plan, 20, 60) if len(s.context) > 1)
    context = [levels[0][None, s.start : s.stop] for s in step.context]
    noise = torch.randn(1, step.target.frames, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    model = build_video_model(cfg, "framepack").eval()
    outputs = []
    for amount in (0.0, 0.3, 0.3):
        sampler = replace(
            cfg.diffusion, sample_steps=2, sample_context_noise=amount, context_noise_scope="all"
        )
        denoiser = DiTDenoiser(model, "patchify", SHAPES, sampler, compile=False)
        outputs.append(denoiser(step, context, actions[None], noise))
    assert outputs[0].shape == outputs[1].shape == noise.shape
    torch.testing.assert_close(outputs[1], outputs[2])
