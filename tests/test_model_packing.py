import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from millivid.model.packing import pack, pack_spans, patchify, unpack_targets, unpatchify
from millivid.model.tokens import NO_ACTION, Tokens
from millivid.plan import METHODS, context_source, make_plan, sample_training_step
from millivid.presets import load_preset

BUDGET = load_preset("tiny").plan  # tokens 16, 4, 1
SHAPES = [(4, 4), (2, 2), (1, 1)]
C = 3


def videos(batch=2, frames=48, seed=0):
    gen = torch.Generator().manual_seed(seed)
    levels = [torch.randn(batch, frames, h, w, C, generator=gen) for h, w in SHAPES]
    actions = torch.randint(0, 3, (batch, frames), generator=gen)
    return levels, actions


def token_latent(levels, source, b, level, kernel, frame, row, col):
    """The latent a token claims to hold, looked up directly from the videos."""
    if source == "patchify" and kernel > 0:
        k = 2**kernel
        block = levels[0][b, frame, row * k : (row + 1) * k, col * k : (col + 1) * k]
        return block.reshape(-1)
    return levels[level][b, frame, row, col]


@settings(max_examples=25, deadline=None)
@given(method=st.sampled_from(sorted(METHODS)), seed=st.integers(0, 10_000))
def test_every_token_holds_the_latent_at_its_level_frame_row_col(method, seed):
    levels, actions = videos(seed=seed % 7)
    step = sample_training_step(method, BUDGET, 48, random.Random(seed))
    source = context_source(method)
    tok = pack(levels, actions, step, source)
    assert tok.length == step.sequence_tokens
    assert tok.context_slots == step.context_tokens + step.missing_tokens
    mask = tok.channel_mask()
    for b in range(2):
        for s in range(tok.length):
            if not tok.valid[b, s]:
                assert tok.action[b, s] == NO_ACTION and tok.values[b, s].abs().sum() == 0
                continue
            lvl, ker = int(tok.level[b, s]), int(tok.kernel[b, s])
            f, r, c = int(tok.frame[b, s]), int(tok.row[b, s]), int(tok.col[b, s])
            want = token_latent(levels, source, b, lvl, ker, f, r, c)
            assert torch.equal(tok.values[b, s][mask[b, s]], want)
            assert int(tok.action[b, s]) == int(actions[b, f])
    # padding sits between context and targets, never among targets
    assert bool(tok.valid[:, tok.context_slots :].all())
    assert int((~tok.valid).sum()) == 2 * step.missing_tokens


@pytest.mark.parametrize("method", sorted(METHODS))
def test_pack_unpack_round_trip_every_planned_step(method):
    levels, actions = videos(frames=60)
    source = context_source(method)
    for step in make_plan(method, BUDGET, 20, 40):
        tok = pack(levels, actions, step, source)
        back = unpack_targets(tok.target_values, step, source, SHAPES, C)
        for span, x in zip((step.target, *step.discarded), back, strict=True):
            lat = levels[0] if source == "patchify" else levels[span.level]
            assert torch.equal(x, lat[:, span.start : span.stop])


def test_patchify_inverse():
    x = torch.randn(2, 3, 8, 4, 5)
    for k in (1, 2, 4):
        p = patchify(x, k)
        assert p.shape == (2, 3, 8 // k, 4 // k, k * k * 5)
        assert torch.equal(unpatchify(p, k), x)


def test_context_cut_at_frame_zero_becomes_invalid_padding():
    levels, actions = videos()
    plan = make_plan("millivid", BUDGET, 1, 20)
    step = next(s for s in plan if s.missing_tokens)
    tok = pack(levels, actions, step, "levels")
    assert int((~tok.valid[0]).sum()) == step.missing_tokens
    assert tok.length == plan[-1].sequence_tokens


def test_batching_steps_and_dropping_context():
    levels, actions = videos()
    rng = random.Random(0)
    steps = [sample_training_step("millivid", BUDGET, 48, rng) for _ in range(2)]
    parts = [
        pack([lat[i : i + 1] for lat in levels], actions[i : i + 1], s, "levels")
        for i, s in enumerate(steps)
    ]
    tok = Tokens.cat(parts)
    assert tok.batch == 2
    dropped = tok.drop_context(torch.tensor([True, False]))
    assert not dropped.valid[0, : tok.context_slots].any()
    assert torch.equal(dropped.valid[1], tok.valid[1])
    assert dropped.valid[:, tok.context_slots :].all()


def test_bad_inputs_name_the_span_and_shape():
    levels, actions = videos()
    step = make_plan("fullres", BUDGET, 10, 12)[0]
    with pytest.raises(ValueError, match="expected latents"):
        pack_spans(step, [levels[0][:, :1]], [levels[0][:, 10:12]], actions, "levels", 3)
    with pytest.raises(ValueError, match="actions"):
        pack(levels, actions[:, :5], step, "levels")
    with pytest.raises(ValueError, match="outside"):
        pack([lat[:, :11] for lat in levels], actions, step, "levels")


@settings(max_examples=20, deadline=None)
@given(method=st.sampled_from(sorted(METHODS)), seed=st.integers(0, 10_000))
def test_compact_values_restore_exactly_and_concatenate(method, seed):
    """Packed ``compact`` (what workers hand over and what is copied to the GPU), values hold
    only the real channels; ``dense`` gives back the dense packing, also after concatenation."""
    levels, actions = videos(seed=seed)
    rng = random.Random(seed)
    src = context_source(method)
    steps = [sample_training_step(method, BUDGET, 48, rng) for _ in range(2)]
    if len({(s.sequence_tokens, s.context_tokens + s.missing_tokens) for s in steps}) > 1:
        return  # mirrored steps of different layouts do not batch (tested elsewhere)

    def packed(compact):
        return Tokens.cat(
            [
                pack(
                    [lat[i : i + 1] for lat in levels], actions[i : i + 1], s, src, compact=compact
                )
                for i, s in enumerate(steps)
            ]
        )

    dense, compact = packed(False), packed(True)
    cin = dense.values.shape[-1]
    assert compact.values.dim() == 1
    assert torch.equal(compact.values, dense.values[dense.channel_mask()])
    assert (compact.batch, compact.length) == (dense.batch, dense.length)
    assert torch.equal(compact.dense(cin).values, dense.values)
    assert dense.dense(cin) is dense
    with pytest.raises(ValueError, match="compact values"):
        compact.dense(1)  # narrower than the real channels


@pytest.mark.parametrize("method", ["millivid", "fullres", "framepack", "mirrored-framepack"])
def test_stochastic_sampler_noise_fills_the_real_target_channels_only(method):
    """A stochastic DDIM step's fresh noise: standard normal in the targets' real channels, zero
    in their padding; where every channel is real, the numbers of one draw of the whole shape."""
    from millivid.rollout.dit_denoiser import target_noise

    levels, actions = videos(frames=60)
    source = context_source(method)
    padded = False
    for step in make_plan(method, BUDGET, 20, 40)[:4]:
        tok = pack(levels, actions, step, source)
        targets = tok.target_values
        mask = tok.channel_mask()[:, tok.context_slots :]
        draws = target_noise(tok, torch.Generator().manual_seed(3))
        first, second = draws(), draws()
        assert first.shape == targets.shape and not torch.equal(first, second)
        assert bool((first[~mask] == 0).all()) and bool((first[mask] != 0).all())
        whole = torch.randn(targets.shape, generator=torch.Generator().manual_seed(3))
        if bool(mask.all()):
            assert torch.equal(first, whole)
        padded |= not bool(mask.all())
    assert padded == ("framepack" in method)  # FramePack's targets pad to the widest kernel
