"""A schedule per latent level (``diffusion.level_shift``): the formulas, the level each training
element is noised at, and the rollout steps' DDIM schedule."""

from dataclasses import replace

import pytest
import torch

from millivid.diffusion import DiffusionConfig, Schedule
from millivid.jobs.video_task import InMemoryLatents, VideoTask
from millivid.plan import make_plan
from millivid.presets import load_preset
from millivid.rollout.dit_denoiser import DiTDenoiser
from tests.test_context_noise import SHAPES, model_off_zero_init, video


def test_each_level_has_the_schedule_of_its_shift():
    cfg = DiffusionConfig(shift=2.0, level_shift=0.5)
    assert cfg.target_schedule(0) == Schedule(2.0) == cfg.schedule
    assert cfg.target_schedule(3) == Schedule(0.25)
    t = torch.rand(64, generator=torch.Generator().manual_seed(0))
    level = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(1))
    a, s = cfg.target_alpha_sigma(t, level)
    for lv in range(4):
        ea, es = cfg.target_schedule(lv).alpha_sigma(t[level == lv])
        torch.testing.assert_close(a[level == lv], ea)
        torch.testing.assert_close(s[level == lv], es)
    # off (the paper): every level on the one schedule, to the bit
    plain = DiffusionConfig(shift=2.0)
    assert plain.target_schedule(3) == plain.schedule
    for x, y in zip(plain.target_alpha_sigma(t, level), plain.schedule.alpha_sigma(t)):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="diffusion.level_shift = 0"):
        DiffusionConfig(level_shift=0.0)


def test_training_noises_each_element_on_its_target_levels_schedule():
    base = load_preset("tiny", ["video_train.batch_size=16", "diffusion.context_dropout=0"])
    source = InMemoryLatents([video(seed=i) for i in range(2)])
    losses = {}
    for ratio in (1.0, 0.5):
        cfg = replace(base, diffusion=replace(base.diffusion, level_shift=ratio))
        task = VideoTask(cfg, "millivid", source)
        batch = task.batch(0, torch.Generator().manual_seed(0))
        level = batch.tokens.level[:, batch.tokens.context_slots]
        assert (level == 0).any() and (level > 0).any()
        torch.manual_seed(0)
        model = task.build_model()
        # one loss per element: the batch restricted to it
        losses[ratio] = [
            task.loss(model, _element(batch, i), "cpu")[0].item() for i in range(batch.t.shape[0])
        ]
    same = [a == b for a, b in zip(losses[1.0], losses[0.5])]
    assert same == (level == 0).tolist()  # only the coarser levels' noise changed


def _element(batch, i):
    """The batch of its element ``i`` alone (dense values)."""
    pick = slice(i, i + 1)
    tokens = batch.tokens.dense(batch.cin)._map(lambda x: x[pick])
    return replace(
        batch, tokens=tokens, t=batch.t[pick], noise=batch.noise[pick], dropped=batch.dropped[pick]
    )


def test_rollout_steps_sample_on_their_target_levels_schedule():
    cfg = load_preset("tiny")
    levels, actions = video()
    model = model_off_zero_init(cfg)
    plan = make_plan("millivid", cfg.plan, 20, 60)
    for level in (0, 2):
        step = next(s for s in plan if s.target.level == level)
        context = [levels[s.level][None, s.start : s.stop] for s in step.context]
        h, w = SHAPES[level]
        gen = torch.Generator().manual_seed(1)
        noise = torch.randn(1, step.target.frames, h, w, 4, generator=gen)
        out = {}
        for ratio in (1.0, 0.5):
            sampler = replace(cfg.diffusion, sample_steps=3, level_shift=ratio)
            denoiser = DiTDenoiser(model, "levels", SHAPES, sampler, compile=False)
            out[ratio] = denoiser(step, context, actions[None], noise)
        assert torch.equal(out[1.0], out[0.5]) == (level == 0)


def test_the_level_shift_variant_differs_from_the_shipped_recipe_in_level_shift_only():
    from millivid.variants import variant_config

    cfg = load_preset("mini")
    (m1, c1), (m2, c2) = (
        variant_config(cfg, "millivid-level-shift"),
        variant_config(cfg, "millivid-own-level-memory"),
    )
    assert m1 == m2 == "millivid"
    assert (c1.diffusion.level_shift, c2.diffusion.level_shift) == (0.5, 1.0)
    assert replace(c1, diffusion=c2.diffusion) == c2
    # a --set on the command line still reaches the variants that do not choose their own
    tuned = replace(cfg, diffusion=replace(cfg.diffusion, level_shift=0.7))
    assert variant_config(tuned, "millivid-own-level-memory")[1].diffusion.level_shift == 0.7
