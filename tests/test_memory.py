"""Memory frames retrieved by camera pose (``plan.memory_frames``): the selection rule, the plan's
token counts, packing, and that a rollout hands the model exactly what training packs."""

import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.jobs.video_task import InMemoryLatents, VideoTask, build_video_model
from millivid.model.memory import gather_frames, memory_pool, pose_distance, select_memory
from millivid.model.packing import pack, pack_spans, relative_poses
from millivid.plan import BudgetError, PlanConfig, check_plan, make_plan, sample_training_step
from millivid.plan.step import Memory, Span, Step
from millivid.presets import load_preset
from millivid.rollout.engine import run_plan
from millivid.rollout.request import extrapolate_poses
from millivid.rollout.store import LatentStore, PendingLatentError
from millivid.variants import variant_config

TINY = PlanConfig(tokens=(16, 4, 1), context=(1, 4, 16), target_tokens=16, memory_frames=2)
SHAPES = [(4, 4), (2, 2), (1, 1)]


def walk(frames, seed=0, batch=1):
    """Random camera tracks float32 [B, T, 5]: forward steps of 0.5 blocks and 30° turns."""
    gen = torch.Generator().manual_seed(seed)
    turn = torch.randint(-1, 2, (batch, frames), generator=gen).double() * 30.0
    yaw = turn.cumsum(1)
    step = (turn == 0).double() * 0.5
    x = (step * torch.deg2rad(yaw).cos()).cumsum(1)
    y = (step * torch.deg2rad(yaw).sin()).cumsum(1)
    zeros = torch.zeros_like(x)
    return torch.stack([x, y, zeros + 10, yaw, zeros], -1).float()


def memory_step(target: Span, first_frame: int, frames: int = 2, pool: str = "older") -> Step:
    """A level-0 step holding [first_frame, first_frame + 2) at level 1 and the rest up to its
    target at level 0."""
    context = (Span(1, first_frame, first_frame + 2), Span(0, first_frame + 2, target.start))
    return Step(
        target=target,
        context=context,
        context_tokens=4 * 2 + 16 * context[1].frames,
        target_tokens=16 * target.frames,
        memory=Memory(0, frames, 16 * frames, pool),
    )


def test_select_memory_finds_the_revisited_frames_before_the_step():
    poses = torch.zeros(1, 40, 5)
    poses[0, :, 0] = torch.arange(40.0)  # walking along x, one block a frame ...
    poses[0, 30:, 0] = torch.tensor([5.0, 5, 20, 20, 20, 20, 20, 20, 20, 20])  # ... then back
    poses[0, 30, 3] = 90.0  # frame 30 stands at frame 5's place, turned; frame 31 matches it
    step = memory_step(Span(0, 30, 32), first_frame=25)
    # frame 30 picks 5 (nearest, though turned); for frame 31, 5 is taken and 4 and 6 are
    # equally near: the more recent one
    assert select_memory(poses, step).tolist() == [[5, 6]]
    # frames at or after first_frame are never picked, even when they match best
    assert select_memory(poses, memory_step(Span(0, 32, 34), first_frame=25)).tolist() == [[20, 21]]
    assert select_memory(poses, memory_step(Span(0, 32, 34), first_frame=18)).tolist() == [[16, 17]]
    assert select_memory(poses, memory_step(Span(0, 30, 32), first_frame=1)).tolist() == [[-1, 0]]
    assert select_memory(poses, memory_step(Span(0, 30, 32), first_frame=0)).tolist() == [[-1, -1]]
    # pool "unheld": every frame before the target except those held at the memory level, so
    # frames 18 and 19, held at level 1 only, may be picked; 20 (held at level 0) may not
    step = memory_step(Span(0, 32, 34), first_frame=18, pool="unheld")
    assert memory_pool(step).tolist() == [True] * 20 + [False] * 12
    assert select_memory(poses, step).tolist() == [[18, 19]]


def test_pose_distance_wraps_the_yaw():
    a = torch.tensor([[[0.0, 0, 0, 175, 0]]])
    b = torch.tensor([[[2.0, 0, 0, -175, 0]]])
    assert pose_distance(a, b).item() == pytest.approx(2 / 2 + 10 / 15)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    start=st.integers(0, 40),
    frames=st.integers(1, 24),
    count=st.integers(1, 6),
    gap=st.integers(2, 30),
    pool=st.sampled_from(["older", "unheld"]),
)
def test_select_memory_picks_distinct_frames_of_its_pool(seed, start, frames, count, gap, pool):
    poses = walk(start + gap + frames, seed, batch=2)
    step = memory_step(Span(0, start + gap, start + gap + frames), start, count, pool)
    allowed = memory_pool(step).nonzero().flatten().tolist()
    assert allowed == list(range(start if pool == "older" else start + 2))
    chosen = select_memory(poses, step)
    assert chosen.shape == (2, count)
    for row in chosen.tolist():
        picked = [f for f in row if f >= 0]
        assert row == sorted(row)
        assert len(picked) == len(set(picked)) == min(count, len(allowed))
        assert set(picked) <= set(allowed)
    if allowed:  # the frame nearest the first group of target frames is always among them
        group = max(1, frames // count)
        a = step.target.start
        dist = pose_distance(poses[:, a : a + group], poses[:, allowed]).amin(1)
        best = dist.min(1).values
        index = {f: i for i, f in enumerate(allowed)}
        got = torch.stack(
            [dist[b, [index[f] for f in chosen[b].tolist() if f >= 0]].min() for b in range(2)]
        )
        assert torch.allclose(got, best)


def select_memory_by_the_rule(poses, step):
    """The selection rule written out plainly: group after group of target frames, the closest
    frame of the pool not yet chosen (ties: the most recent)."""
    pool = memory_pool(step)
    count, target = step.memory.frames, step.target
    chosen = []
    for video in poses:
        dist = pose_distance(video[None, target.start : target.stop], video[None, : len(pool)])[0]
        bounds = torch.linspace(0, target.frames, count + 1).long().tolist()
        taken, row = set(), []
        for j in range(min(count, int(pool.sum()))):
            lo = bounds[j]
            group = dist[lo : max(bounds[j + 1], lo + 1)].amin(0).tolist()
            best = min(
                (f for f in range(len(pool)) if pool[f] and f not in taken),
                key=lambda f: (group[f], -f),
            )
            taken.add(best)
            row.append(best)
        chosen.append(sorted(row) + [-1] * (count - len(row)))
    return [sorted(r) for r in chosen]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    start=st.integers(0, 60),
    frames=st.integers(1, 40),
    count=st.integers(1, 64),
    gap=st.integers(2, 40),
    pool=st.sampled_from(["older", "unheld"]),
    coarse=st.booleans(),
)
def test_select_memory_follows_the_rule(seed, start, frames, count, gap, pool, coarse):
    poses = walk(start + gap + frames, seed, batch=3)
    if coarse:  # many equally close frames: the ties decide
        poses = poses.round()
    step = memory_step(Span(0, start + gap, start + gap + frames), start, count, pool)
    assert select_memory(poses, step).tolist() == select_memory_by_the_rule(poses, step)


def test_memory_adds_the_same_tokens_to_every_step_of_every_method():
    for method in ("millivid", "framepack", "fullres"):
        base = make_plan(method, replace(TINY, memory_frames=0), 30, 130)
        plan = make_plan(method, TINY, 30, 130)
        assert {s.sequence_tokens for s in plan} == {base[0].sequence_tokens + 2 * 16}
        assert all(s.memory == Memory(0, 2, 32, "unheld") for s in plan)
        check_plan(method, TINY, 30, 130, plan)
    assert make_plan("millivid", replace(TINY, memory_level=2), 30, 40)[0].memory_tokens == 2
    with pytest.raises(BudgetError, match="plan.memory_frames = -1"):
        make_plan("millivid", replace(TINY, memory_frames=-1), 30, 40)
    with pytest.raises(BudgetError, match="plan.memory_level = 3"):
        make_plan("millivid", replace(TINY, memory_level=3), 30, 40)
    with pytest.raises(BudgetError, match="plan.memory_pool = 'all'"):
        make_plan("millivid", replace(TINY, memory_pool="all"), 30, 40)


def test_memory_levels_give_each_target_level_its_own_memory_in_the_same_tokens():
    """``plan.memory_levels``: a step whose target is at level l sees its memory at
    ``memory_levels[l]``, as many frames as fill memory_frames x tokens[memory_level]."""
    budget = replace(TINY, memory_levels=(0, 1, 2))  # 2 level-0 frames = 32 tokens
    plan = make_plan("millivid", budget, 30, 130)
    seen = {(s.target.level, s.memory.level, s.memory.frames) for s in plan}
    assert seen == {(0, 0, 2), (1, 1, 8), (2, 2, 32)}
    assert {s.memory_tokens for s in plan} == {32}
    assert {s.sequence_tokens for s in plan} == {
        make_plan("millivid", TINY, 30, 130)[0].sequence_tokens
    }
    check_plan("millivid", budget, 30, 130, plan)
    with pytest.raises(BudgetError, match="one memory level per target level, 3 values"):
        make_plan("millivid", replace(TINY, memory_levels=(0, 1)), 30, 40)
    with pytest.raises(BudgetError, match="level 3 must be in 0..2"):
        make_plan("millivid", replace(TINY, memory_levels=(0, 1, 3)), 30, 40)
    odd = replace(TINY, memory_frames=1, memory_level=2, memory_levels=(0, 1, 2))
    with pytest.raises(BudgetError, match="fill the 1 memory tokens exactly"):
        make_plan("millivid", odd, 30, 40)


def test_upscaling_takes_memory_at_each_steps_own_level_not_at_level_0():
    """Upscaling generates the whole coarse level first: level-0 memory frames between the start
    and a coarse target do not exist yet, so the plan is refused (before any training); memory
    at each step's own level is known when the step runs."""
    with pytest.raises(BudgetError, match="plan.memory_levels=0,1,2"):
        make_plan("upscale", TINY, 30, 130)
    own = replace(TINY, memory_levels=(0, 1, 2))
    plan = make_plan("upscale", own, 30, 130)
    assert {(s.target.level, s.memory.level) for s in plan} == {(0, 0), (1, 1), (2, 2)}
    check_plan("upscale", own, 30, 130, plan)


def video(frames=96, channels=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    levels = [torch.randn(1, frames, h, w, channels, generator=gen) for h, w in SHAPES]
    return levels, torch.randint(0, 3, (1, frames), generator=gen), walk(frames, seed)


def test_pack_puts_the_memory_frames_between_context_and_padding():
    levels, actions, poses = video()
    step = make_plan("millivid", TINY, 2, 90)[0]  # context cut at frame 0: padding too
    chosen = select_memory(poses, step)
    tokens = pack(levels, actions, step, "levels", poses=poses)
    assert tokens.length == step.sequence_tokens
    at = slice(step.context_tokens, step.context_tokens + step.memory_tokens)
    frame, valid = tokens.frame[0, at], tokens.valid[0, at]
    assert frame[valid].unique().tolist() == [f for f in chosen[0].tolist() if f >= 0]
    assert not valid.all()  # fewer than 2 frames before the step: a padded slot
    row, col = tokens.row[0, at][valid], tokens.col[0, at][valid]
    assert torch.equal(tokens.values[0, at][valid], levels[0][0, frame[valid], row, col])
    assert torch.equal(
        tokens.pose[0, at][valid], relative_poses(poses, step.target.start)[0, frame[valid]]
    )
    assert torch.equal(tokens.action[0, at][valid], actions[0, frame[valid]])
    with pytest.raises(ValueError, match="needs the videos' camera poses"):
        pack(levels, actions, step, "levels")
    spans = [levels[s.level][:, s.start : s.stop] for s in step.context]
    target = [levels[0][:, step.target.start : step.target.stop]]
    with pytest.raises(ValueError, match="memory latents missing"):
        pack_spans(step, spans, target, actions, "levels", 3)


def test_gather_frames_zeroes_missing_slots():
    lat = torch.randn(2, 10, 1, 1, 3)
    got = gather_frames(lat, torch.tensor([[3, -1], [0, 9]]))
    assert torch.equal(got[0, 0], lat[0, 3]) and not got[0, 1].any()
    assert torch.equal(got[1, 1], lat[1, 9])


@pytest.mark.parametrize(
    "method,source,pool,level,by_target",
    [
        ("millivid", "levels", "unheld", 0, ()),
        ("millivid", "levels", "unheld", 1, ()),
        ("millivid", "levels", "unheld", 0, (0, 1, 2)),
        ("millivid", "levels", "unheld", 0, (0, 0, 1)),
        ("millivid", "levels", "older", 0, ()),
        ("framepack", "patchify", "unheld", 0, ()),
        ("fullres", "levels", "unheld", 0, ()),
    ],
)
def test_rollout_hands_the_model_what_training_packs(method, source, pool, level, by_target):
    """A rollout whose denoiser returns the true latents sees, at every step, exactly the tokens
    that training packs for that step from the whole video: same memory frames included (and the
    store, which refuses pending latents, holds every frame the pool offers)."""
    levels, actions, poses = video(frames=128)  # the last chunks run past frame 90
    budget = replace(TINY, memory_pool=pool, memory_level=level, memory_levels=by_target)
    plan = make_plan(method, budget, 40, 90)
    store = LatentStore(SHAPES, batch=1, frames=max(s.last_frame for s in plan), channels=4)
    for lvl, lat in enumerate(levels):
        store.write(Span(lvl, 0, 40), lat[:, :40])
    seen = []

    def truth(step, context, acts, noise, memory=None, generator=None):
        packed = pack_spans(step, context, [noise], acts, source, 3, poses=poses, memory=memory)
        seen.append((step, packed))
        lat = levels[0 if source == "patchify" else step.target.level]
        return lat[:, step.target.start : step.target.stop]

    run_plan(plan, store, truth, actions, source=source, poses=poses)
    assert len(seen) == len(plan)
    for step, packed in seen:
        train = pack(levels, actions, step, source, num_levels=3, poses=poses)
        n = packed.context_slots
        for field in ("frame", "level", "valid", "action", "pose"):
            assert torch.equal(getattr(packed, field), getattr(train, field)), field
        assert torch.equal(packed.values[:, :n], train.values[:, :n])
    with pytest.raises(ValueError, match="give the poses"):
        run_plan(plan, store, truth, actions, source=source)


def test_store_refuses_memory_frames_it_does_not_know():
    store = LatentStore(SHAPES, batch=1, frames=10, channels=4)
    store.write(Span(0, 0, 4), torch.zeros(1, 4, 4, 4, 4))
    assert store.gather(0, torch.tensor([[3, -1]])).shape == (1, 2, 4, 4, 4)
    with pytest.raises(PendingLatentError, match="not known yet"):
        store.gather(0, torch.tensor([[2, 5]]))


def test_memory_needs_a_pose_conditioned_model_and_trains():
    with pytest.raises(ValueError, match="memory frames are retrieved by camera pose"):
        build_video_model(load_preset("tiny", ["plan.memory_frames=2"]), "millivid")
    cfg = load_preset(
        "tiny", ["plan.memory_frames=2", "model.condition=both", "video_train.batch_size=4"]
    )
    vids = [video(seed=i) for i in range(2)]
    source = InMemoryLatents(
        [([lat[0] for lat in lv], acts[0]) for lv, acts, _ in vids],
        poses=[p[0] for _, _, p in vids],
    )
    task = VideoTask(cfg, "millivid", source)
    batch = task.batch(0, torch.Generator().manual_seed(0))
    assert batch.tokens.length == make_plan("millivid", cfg.plan, 40, 50)[0].sequence_tokens
    loss, _ = task.loss(task.build_model(), batch, "cpu")
    assert torch.isfinite(loss)
    step = sample_training_step("millivid", cfg.plan, 96, random.Random(0))
    assert step.memory is not None


def test_poses_past_the_end_keep_the_last_motion():
    """Steps that run past the last given frame condition on poses there (and pick memory frames
    by them): the camera keeps its last motion, as the repeated last action would move it."""
    poses = np.array([[0, 0, 5, 170, -10], [1, 0, 5, 179, -10], [2, 0, 5, -172, -12]], np.float32)
    out = extrapolate_poses(poses, 5)
    np.testing.assert_allclose(out[:3], poses)
    np.testing.assert_allclose(out[3:, :3], [[3, 0, 5], [4, 0, 5]])
    np.testing.assert_allclose(out[3:, 3], [-163, -154])  # 9° a frame, across ±180
    np.testing.assert_allclose(out[3:, 4], [-12, -12])
    assert extrapolate_poses(poses[:1], 3).tolist() == [poses[0].tolist()] * 3  # one frame: stay
    assert extrapolate_poses(poses, 2).shape == (2, 5)


def test_memory_variants_spend_the_same_tokens_at_other_levels():
    """``millivid-coarse-memory``: 16 level-1 frames where ``millivid-memory-aug`` has 4 level-0
    frames; ``-own-level-`` and ``-split-memory``: per target level; the same sequence length at
    the mini preset."""
    cfg = load_preset("mini")
    steps = {}
    names = ("millivid-coarse-memory", "millivid-own-level-memory", "millivid-split-memory")
    for name in ("millivid-memory-aug", *names):
        method, vcfg = variant_config(cfg, name)
        steps[name] = make_plan(method, vcfg.plan, 256, 1024)
    coarse = steps["millivid-coarse-memory"]
    assert {s.memory.level for s in coarse} == {1} and {s.memory.frames for s in coarse} == {16}
    for name in names:
        assert [s.sequence_tokens for s in steps[name]] == [
            s.sequence_tokens for s in steps["millivid-memory-aug"]
        ], name
    own = {(s.target.level, s.memory.level, s.memory.frames) for s in steps[names[1]]}
    assert own == {(0, 0, 4), (1, 1, 16), (2, 2, 64), (3, 3, 256)}
    split = {(s.target.level, s.memory.level, s.memory.frames) for s in steps[names[2]]}
    assert split == {(0, 0, 4), (1, 0, 4), (2, 1, 16), (3, 1, 16)}
    tiny = load_preset("tiny")  # 3 levels: the per-level variants follow the budget
    for name, want in (
        ("millivid-own-level-memory", (0, 1, 2)),
        ("millivid-split-memory", (0, 1, 1)),
    ):
        assert variant_config(tiny, name)[1].plan.memory_levels == want
