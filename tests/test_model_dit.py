import random
from dataclasses import replace

import pytest
import torch

from millivid.model.config import DiTConfig
from millivid.model.dit import ContextCache, VideoDiT
from millivid.model.packing import pack
from millivid.model.tokens import Tokens
from millivid.plan import context_source, make_plan, sample_training_step
from millivid.presets import load_preset

BUDGET = load_preset("tiny").plan
SHAPES = [(4, 4), (2, 2), (1, 1)]
C = 3


def videos(batch=2, frames=48, seed=0):
    gen = torch.Generator().manual_seed(seed)
    levels = [torch.randn(batch, frames, h, w, C, generator=gen) for h, w in SHAPES]
    return levels, torch.randint(0, 3, (batch, frames), generator=gen)


def make_model(method, attention="context-causal", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = DiTConfig(width=48, depth=3, heads=3, attention=attention, **kw)
    model = VideoDiT(cfg, C, 3, 3 if context_source(method) == "patchify" else 1)
    with torch.no_grad():  # leave adaLN-Zero's zero init, so that outputs depend on everything
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.3)
    return model.eval()


def packed(method, start=1, index=None, batch=2):
    levels, actions = videos(batch)
    plan = make_plan(method, BUDGET, start, 40)
    step = plan[index] if index is not None else plan[len(plan) // 2]
    return pack(levels, actions, step, context_source(method)), step


T = torch.tensor([0.3, 0.8])


@pytest.mark.parametrize("method", ["millivid", "framepack", "mirrored-framepack", "upscale"])
@pytest.mark.parametrize("start", [1, 30])  # 1: context cut at frame 0 (padding)
def test_kv_cache_forward_equals_full_forward(method, start):
    model = make_model(method)
    tok, _ = packed(method, start, index=0)
    with torch.no_grad():
        full = model(tok, T)
        cache = model.encode_context(tok)
        fast = model.forward_targets(tok, T, cache)
        # the cache serves every denoising step: new target values, same context
        noisy = tok.with_targets(torch.randn_like(tok.target_values))
        full2 = model(noisy, T.flip(0))
        fast2 = model.forward_targets(noisy, T.flip(0), cache)
    assert full.abs().mean() > 1e-3
    torch.testing.assert_close(fast, full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast2, full2, rtol=1e-4, atol=1e-5)


def test_kv_cache_is_reusable_across_calls():
    """The rollout calls forward_targets many times on one cache: a second call with other
    targets and times equals a fresh cache and the full recompute (the first call leaves no
    trace in the cache)."""
    model = make_model("millivid")
    tok, _ = packed("millivid", 30)
    other = perturb_targets(tok)
    with torch.no_grad():
        cache = model.encode_context(tok)
        first = model.forward_targets(tok, T, cache)
        second = model.forward_targets(other, T.flip(0), cache)
        fresh = model.forward_targets(other, T.flip(0), model.encode_context(other))
        full = model(other, T.flip(0))
    assert not torch.allclose(first, second, atol=1e-3)
    assert torch.equal(second, fresh)
    torch.testing.assert_close(second, full, rtol=1e-4, atol=1e-5)


def test_kv_cache_with_dropped_context_and_unconditional_branch():
    model = make_model("millivid")
    tok, _ = packed("millivid", 30)
    dropped = tok.drop_context(torch.tensor([True, False]))
    all_dropped = tok.drop_context(torch.tensor([True, True]))
    with torch.no_grad():
        full = model(dropped, T)
        fast = model.forward_targets(dropped, T, model.encode_context(dropped))
        uncond = model.forward_targets(all_dropped, T, model.encode_context(all_dropped))
        uncond_full = model(all_dropped, T)
    torch.testing.assert_close(fast, full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(uncond, uncond_full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(full[0], uncond[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(full[1], uncond[1], atol=1e-3)


def perturb_targets(tok: Tokens) -> Tokens:
    return tok.with_targets(tok.target_values + torch.randn_like(tok.target_values))


@pytest.mark.parametrize("method", ["millivid", "framepack"])
def test_context_causal_context_never_sees_targets(method):
    model = make_model(method)
    tok, _ = packed(method, 30)
    sc = tok.context_slots
    with torch.no_grad():
        a = model.hidden(tok, T)
        b = model.hidden(perturb_targets(tok), T)
        c = model.hidden(tok, torch.tensor([0.9, 0.1]))  # target time changes too
    torch.testing.assert_close(a[:, :sc], b[:, :sc], rtol=0, atol=0)
    torch.testing.assert_close(a[:, :sc], c[:, :sc], rtol=0, atol=0)
    assert not torch.allclose(a[:, sc:], b[:, sc:], atol=1e-3)


def test_full_attention_context_does_see_targets():
    model = make_model("millivid", attention="full")
    tok, _ = packed("millivid", 30)
    sc = tok.context_slots
    with torch.no_grad():
        a, b = model.hidden(tok, T), model.hidden(perturb_targets(tok), T)
    assert not torch.allclose(a[:, :sc], b[:, :sc], atol=1e-3)
    with pytest.raises(ValueError, match="context-causal"):
        model.encode_context(tok)


@pytest.mark.parametrize("attention", ["full", "context-causal"])
def test_padding_and_dropped_context_values_are_replaced_by_the_null_token(attention):
    model = make_model("millivid", attention=attention)
    tok, step = packed("millivid", 1, index=0)
    assert step.missing_tokens > 0
    pad = ~tok.valid
    junk = replace(tok, values=torch.where(pad.unsqueeze(-1), 7.0, tok.values))
    dropped = tok.drop_context(torch.tensor([True, False]))
    junk_ctx = replace(dropped, values=dropped.values.clone())
    junk_ctx.values[0, : tok.context_slots] += 5.0
    with torch.no_grad():
        torch.testing.assert_close(model(junk, T), model(tok, T), rtol=1e-5, atol=1e-6)
        out_a, out_b = model(dropped, T), model(junk_ctx, T)
        kept = model(tok, T)
    torch.testing.assert_close(out_a[0], out_b[0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out_a[0], kept[0], atol=1e-3)  # dropping changes the prediction


def test_batched_steps_equal_separate_steps():
    model = make_model("millivid")
    levels, actions = videos(1)
    rng = random.Random(2)
    steps = [sample_training_step("millivid", BUDGET, 48, rng) for _ in range(3)]
    parts = [pack(levels, actions, s, "levels") for s in steps]
    t = torch.tensor([0.2, 0.5, 0.9])
    with torch.no_grad():
        together = model(Tokens.cat(parts), t)
        alone = torch.cat([model(p, t[i : i + 1]) for i, p in enumerate(parts)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_activation_checkpointing_gives_the_same_gradients():
    tok, _ = packed("millivid", 30)
    grads = []
    for ckpt in (False, True):
        model = make_model("millivid", checkpointing=ckpt).train()
        model(tok, T).square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_zero_init_model_predicts_zero_and_compiles_without_graph_breaks():
    torch.manual_seed(0)
    model = VideoDiT(DiTConfig(width=48, depth=2, heads=3), C, 3)
    tok, _ = packed("millivid", 30)
    assert torch.equal(model(tok, T), torch.zeros_like(tok.target_values))
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(tok, T), model(tok, T))


@pytest.mark.parametrize("guidance", [1.0, 1.5])
def test_sampling_with_context_reuse_equals_recompute(guidance):
    from millivid.diffusion import ddim_times
    from millivid.model.ddim_sampler import sample_targets

    model = make_model("millivid")
    tok, _ = packed("millivid", 30)
    tok = tok.with_targets(torch.randn_like(tok.target_values))
    fast = sample_targets(model, tok, times=ddim_times(4), guidance=guidance, reuse_context=True)
    slow = sample_targets(model, tok, times=ddim_times(4), guidance=guidance, reuse_context=False)
    assert fast.shape == tok.target_values.shape and torch.isfinite(fast).all()
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-4)
    if guidance != 1.0:
        plain = sample_targets(model, tok, times=ddim_times(4), guidance=1.0)
        assert not torch.allclose(plain, fast, atol=1e-3)


def test_bf16_sampling_matches_fp32_to_bf16_tolerance():
    from millivid.diffusion import ddim_times
    from millivid.model.ddim_sampler import sample_targets

    model = make_model("millivid")
    tok, _ = packed("millivid", 30)
    tok = tok.with_targets(torch.randn_like(tok.target_values))
    ref = sample_targets(model, tok, times=ddim_times(4), reuse_context=False, bf16=False)
    half = sample_targets(model, tok, times=ddim_times(4), reuse_context=True, bf16=True)
    assert half.dtype == torch.float32
    assert not torch.equal(half, ref)  # autocast really ran in bf16
    torch.testing.assert_close(half, ref, rtol=0.05, atol=0.05)


def test_kv_cache_of_another_length_is_refused():
    model = make_model("millivid")
    tok, _ = packed("millivid", 30)
    with torch.no_grad():
        cache = model.encode_context(tok)
        short = ContextCache([k[:, :, 1:] for k in cache.keys], [v[:, :, 1:] for v in cache.values])
        with pytest.raises(ValueError, match="context slots"):
            model.forward_targets(tok, T, short)


def test_action_adaln_carries_the_actions_into_the_modulation():
    """``model.action_adaln``: with the additive action embedding made constant, a target token's
    action still moves the output (through the adaLN rows), and the K/V-reuse path agrees with
    the joint one; with a zero action table it is the model without it."""
    tok, _ = packed("millivid", 30, index=0)
    changed = tok.action.clone()
    changed[:, tok.context_slots :] = (changed[:, tok.context_slots :] + 1) % 3
    outputs = {}
    for adaln in (False, True):
        model = make_model("millivid", action_adaln=adaln)
        with torch.no_grad():
            model.action_embed.weight.zero_()
            outputs[adaln] = model(tok, T), model(replace(tok, action=changed), T)
            if adaln:
                cache = model.encode_context(tok)
                fast = model.forward_targets(tok, T, cache)
                torch.testing.assert_close(fast, outputs[adaln][0], rtol=1e-4, atol=1e-5)
                plain = make_model("millivid")
                plain.load_state_dict(model.state_dict(), strict=False)
                plain.action_embed.weight.zero_()
                model.cond_action.weight.zero_()
                torch.testing.assert_close(model(tok, T), plain(tok, T))
    torch.testing.assert_close(outputs[False][0], outputs[False][1])  # no way in for actions
    assert (outputs[True][0] - outputs[True][1]).abs().mean() > 1e-3


def test_action_adaln_needs_actions():
    with pytest.raises(ValueError, match="model.action_adaln needs actions"):
        make_model("millivid", condition="poses", action_adaln=True)
