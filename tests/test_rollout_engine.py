import pytest
import torch

from millivid.plan import Span, generated_levels, make_plan
from millivid.presets import load_preset
from millivid.rollout.engine import run_plan
from millivid.rollout.store import LatentStore, PendingLatentError

BUDGET = load_preset("tiny").plan  # tokens 16,4,1; context 1,4,16; target 16 tokens
SHAPES = [(4, 4), (2, 2), (1, 1)]


def make_store(frames, known, channels=2, batch=2):
    store = LatentStore(SHAPES, batch=batch, frames=frames, channels=channels)
    for level, (h, w) in enumerate(SHAPES):
        gt = torch.randn(batch, known, h, w, channels)
        store.write(Span(level, 0, known), gt)
    return store


def mean_denoiser(step, context, actions, noise, memory=None, generator=None):
    # deterministic function of context and noise; NaN anywhere in the context propagates
    total = sum(c.sum() for c in context)
    return noise * 0.5 + total * 1e-3


@pytest.mark.parametrize("method", ["millivid", "upscale", "fullres", "cascaded"])
def test_rollout_fills_exactly_planned_frames_and_never_reads_pending(method):
    start, end = 24, 60
    plan = make_plan(method, BUDGET, start, end)
    frames = max(s.last_frame for s in plan)
    store = make_store(frames, start)
    actions = torch.zeros(2, frames, dtype=torch.long)
    run_plan(plan, store, mean_denoiser, actions, seed=3)
    for level in generated_levels(method, BUDGET):
        assert bool(store.known[level, :end].all()), f"level {level} not filled"
        assert not torch.isnan(store.levels[level][:, :end]).any()
    # every read was of known latents (store.read raises otherwise) and planned context only
    planned = {(s.level, max(s.start, 0), s.stop) for st in plan for s in st.context if s.stop > 0}
    assert {(s.level, s.start, s.stop) for s in store.reads} <= planned


def test_reading_pending_latents_raises():
    store = make_store(frames=10, known=4)
    with pytest.raises(PendingLatentError, match="not known"):
        store.read(Span(0, 2, 6))


def test_resume_from_saved_store_matches_uninterrupted():
    start, end = 24, 50
    plan = make_plan("millivid", BUDGET, start, end)
    frames = max(s.last_frame for s in plan)
    actions = torch.zeros(2, frames, dtype=torch.long)
    torch.manual_seed(0)
    full = make_store(frames, start)
    saved_initial = full.state_dict()
    run_plan(plan, full, mean_denoiser, actions, seed=7)

    part = make_store(frames, start)
    part.load_state_dict(saved_initial)
    snapshots = {}

    def stop_after_5(i):
        snapshots[i] = part.state_dict()
        if i == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, part, mean_denoiser, actions, seed=7, after_step=stop_after_5)
    resumed = make_store(frames, start)
    resumed.load_state_dict(snapshots[4])
    run_plan(plan, resumed, mean_denoiser, actions, seed=7, first_step=5)
    for a, b in zip(full.levels, resumed.levels, strict=True):
        assert torch.equal(a.nan_to_num(123.0), b.nan_to_num(123.0))
