"""Video DiT throughput (training), rollout-step timing (context K/V reuse) and end-to-end
generation timing, on one GPU.

Training: samples/s, tokens/s and MFU of the real model end to end (packing done once up front,
random latents, the task's v-prediction loss, the trainer's optimizers and optimizer step
(``build_optimizers``, ``optimizer_step``: Muon for linear weights, its step compiled with the
model; AdamW for the rest, fused on CUDA), bf16 autocast, torch.compile). FLOPs are counted
analytically (``model_flops``) and divided by a bf16 matmul peak measured in the same process.

    python benchmarks/bench_video_model.py --device cuda --preset paper --mode train --batch 24
    python benchmarks/bench_video_model.py --device cuda --preset mini --mode train --batch 128
    python benchmarks/bench_video_model.py --device cuda --preset paper --mode rollout --batch 8
    python benchmarks/bench_video_model.py --device cuda --preset paper --mode generate --batch 8

Rollout: one rollout step of B videos with N denoising steps, (a) recomputing the whole sequence
every step vs (b) one ``encode_context`` + N target-only ``forward_targets`` (context-causal).
CPU smoke run: ``--device cpu --preset tiny --steps 2 --warmup 1 --no-compile``.

Generate: the product path of ``millivid generate`` for B videos with random weights and random
context frames: encode the context with the autoencoder, ``run_plan`` with ``DiTDenoiser`` over
the method's plan, decode the generated level-0 latents. One untimed plan step first (it compiles
the model: ``warmup_step_s``). ``--plan-steps N`` stops after N plan steps and extrapolates the
sampling time linearly to the whole plan (``total_s_extrapolated``; the decode always covers every
generated frame). Context-causal attention unless ``--set model.attention=full``.
CPU smoke run: ``--device cpu --preset tiny --no-compile --batch 1 --plan-steps 2``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernel_profile import profile  # noqa: E402  (beside this file)

from millivid.autoencoder.model import HierarchicalAutoencoder  # noqa: E402
from millivid.jobs.video_task import InMemoryLatents, VideoTask, build_video_model  # noqa: E402
from millivid.model.ddim_sampler import compile_for_sampling  # noqa: E402
from millivid.model.dit import VideoDiT  # noqa: E402
from millivid.model.packing import pack  # noqa: E402
from millivid.model.tokens import Tokens  # noqa: E402
from millivid.nn import SDPA_BACKENDS, attention_kernel, count_parameters  # noqa: E402
from millivid.plan import context_source, make_plan, max_lookback  # noqa: E402
from millivid.presets import load_preset  # noqa: E402
from millivid.rollout.engine import run_plan  # noqa: E402
from millivid.rollout.request import GenerateRequest  # noqa: E402
from millivid.rollout.resumable import decode_frames, prepare_rollout, write_context  # noqa: E402
from millivid.train import build_optimizers, optimizer_step  # noqa: E402
from millivid.variants import VARIANTS, variant_config  # noqa: E402


def model_flops(model: VideoDiT, tokens: Tokens) -> float:
    """Forward FLOPs of one sample (matmuls only: linear layers and attention)."""
    d, depth = model.cfg.width, model.cfg.depth
    s, sc = tokens.length, tokens.context_slots
    st = s - sc
    hidden = int(d * model.cfg.mlp_ratio)
    linear = 2 * s * (4 * d * d + 2 * d * hidden)  # qkv + proj + MLP
    if model.cfg.attention == "full":
        attn = 4 * s * s * d
    else:
        attn = 4 * d * (sc * sc + st * s)
    io = 2 * s * model.cin * d + 2 * st * d * model.cin
    return depth * (linear + attn) + io


def target_only_flops(model: VideoDiT, tokens: Tokens) -> tuple[float, float]:
    """(encode_context, one forward_targets) forward FLOPs of one sample."""
    d, depth = model.cfg.width, model.cfg.depth
    s, sc = tokens.length, tokens.context_slots
    st = s - sc
    hidden = int(d * model.cfg.mlp_ratio)
    per_tok = 2 * (4 * d * d + 2 * d * hidden)
    ctx = depth * (sc * per_tok + 4 * d * sc * sc)
    tgt = depth * (st * per_tok + 4 * d * st * s) + 4 * st * model.cin * d
    return ctx, tgt


def random_task(
    preset: str, method: str, overrides: list[str], variant: str | None = None
) -> VideoTask:
    """A task over one long video of random latents (and a random camera walk, for the variants
    conditioned on poses); ``variant``: that variant's method and config (``millivid.variants``)
    instead of ``method``'s."""
    cfg = load_preset(preset, overrides)
    if variant is not None:
        method, cfg = variant_config(cfg, variant)
    side = cfg.ae.image_size // cfg.ae.patch
    frames = max_lookback(method, cfg.plan) + 1024
    gen = torch.Generator().manual_seed(0)
    levels = [
        torch.randn(frames, side >> lvl, side >> lvl, cfg.ae.channels, generator=gen)
        for lvl in range(cfg.ae.levels)
    ]
    actions = torch.randint(0, 3, (frames,), generator=gen)
    poses = torch.zeros(frames, 5)
    poses[:, :2] = (torch.rand(frames, 2, generator=gen) - 0.5).cumsum(0)
    poses[:, 3] = ((actions - 1) * 15.0).cumsum(0)
    return VideoTask(cfg, method, InMemoryLatents([(levels, actions)], [poses]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_train(args: argparse.Namespace, device: torch.device) -> dict:
    task = random_task(args.preset, args.method, args.set, args.variant)
    task.batch_size = args.batch
    model = task.build_model().to(device)
    if args.checkpointing:
        model.cfg = replace(model.cfg, checkpointing=True)
    batch = task.batch(0, torch.Generator().manual_seed(0)).to(device)
    fwd = model if args.no_compile else torch.compile(model)
    opts = build_optimizers(model, task.config.video_train)  # the trainer's own Muon + AdamW
    step_optimizers = optimizer_step(opts, compile=not args.no_compile)  # as the trainer does
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def train_step() -> torch.Tensor:
        with amp:
            loss, _ = task.loss(fwd, batch, device)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        step_optimizers()
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(args.warmup):
        train_step()
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step()
    sync(device)
    seconds = (time.perf_counter() - start) / args.steps
    flops = 3 * model_flops(model, batch.tokens) * args.batch
    out = {
        "mode": "train",
        "params_M": count_parameters(model) / 1e6,
        "batch": args.batch,
        "sequence": batch.tokens.length,
        "null_tokens": int((~batch.tokens.valid).sum()),
        "step_ms": seconds * 1e3,
        "samples_per_s": args.batch / seconds,
        "tokens_per_s": args.batch * batch.tokens.length / seconds,
        "model_tflops_per_s": flops / seconds / 1e12,
    }
    if device.type == "cuda":
        out["peak_memory_GiB"] = torch.cuda.max_memory_allocated() / 2**30
    if args.profile:
        out["gpu_ms_per_step_by_kind"] = profile(train_step, 3, args.profile)
    return out


def bench_batch(args: argparse.Namespace, device: torch.device) -> dict:
    """Building one training batch on the CPU (what each DataLoader worker does), best of
    ``--steps`` after one warm-up, and its size in bytes."""
    task = random_task(args.preset, args.method, args.set, args.variant)
    task.batch_size = args.batch
    gen = torch.Generator().manual_seed(0)
    batch = task.batch(0, gen)
    times = []
    for step in range(1, args.steps + 1):
        begin = time.perf_counter()
        batch = task.batch(step, gen)
        times.append(time.perf_counter() - begin)
    tensors = (batch.tokens.values, batch.noise)
    return {
        "mode": "batch",
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "ms_per_batch": min(times) * 1e3,
        "values_shape": list(batch.tokens.values.shape),
        "MB_values_and_noise": sum(t.numel() * t.element_size() for t in tensors) / 1e6,
    }


def bench_rollout(args: argparse.Namespace, device: torch.device) -> dict:
    overrides = [*args.set, "model.attention=context-causal"]
    cfg = load_preset(args.preset, overrides)
    task = random_task(args.preset, args.method, overrides)
    model = build_video_model(cfg, args.method).to(device).eval()
    source = context_source(args.method)
    start = max_lookback(args.method, cfg.plan)
    step = make_plan(args.method, cfg.plan, start, start + 256)[0]
    levels, actions = task.source.load(0)
    tokens = pack([lat[None] for lat in levels], actions[None], step, source, cfg.ae.levels)
    tokens = Tokens.cat([tokens] * args.batch).to(device)
    if not args.no_compile:
        compile_for_sampling(model)
    full, targets, encode = model, model.forward_targets, model.encode_context
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    t = torch.full((args.batch,), 0.5, device=device)
    n = args.denoise_steps

    def recompute() -> None:
        x = tokens
        for _ in range(n):
            x = x.with_targets(full(x, t).to(x.values.dtype))

    def reuse() -> None:
        cache = encode(tokens)
        x = tokens
        for _ in range(n):
            x = x.with_targets(targets(x, t, cache).to(x.values.dtype))

    result = {"mode": "rollout", "batch": args.batch, "denoise_steps": n, "sequence": tokens.length}
    with torch.no_grad(), amp:
        for name, fn in (("recompute", recompute), ("kv_reuse", reuse)):
            for _ in range(max(args.warmup, 1)):
                fn()
            sync(device)
            begin = time.perf_counter()
            for _ in range(args.steps):
                fn()
            sync(device)
            result[f"{name}_ms_per_rollout_step"] = (time.perf_counter() - begin) / args.steps * 1e3
        sync(device)
        begin = time.perf_counter()
        for _ in range(args.steps):
            encode(tokens)
        sync(device)
        result["encode_context_ms"] = (time.perf_counter() - begin) / args.steps * 1e3
        if args.profile:  # GPU time of one K/V-reuse rollout step, by kernel category
            result["kv_reuse_gpu_ms_by_kind"] = profile(reuse, 1, args.profile)
    ctx, tgt = target_only_flops(model, tokens)
    result["flops_recompute_per_rollout_step"] = n * model_flops(model, tokens) * args.batch
    result["flops_kv_reuse_per_rollout_step"] = (ctx + n * tgt) * args.batch
    result["speedup"] = (
        result["recompute_ms_per_rollout_step"] / result["kv_reuse_ms_per_rollout_step"]
    )
    return result


def bench_generate(args: argparse.Namespace, device: torch.device) -> dict:
    """Wall seconds of ``millivid generate``'s path for ``--batch`` random videos (module doc)."""
    cfg = load_preset(args.preset, ["model.attention=context-causal", *args.set])
    ae = HierarchicalAutoencoder(cfg.ae).to(device).eval()
    model = build_video_model(cfg, args.method).to(device).eval()
    rng = np.random.default_rng(0)
    size, ctx = cfg.ae.image_size, args.context
    req = GenerateRequest(
        frames=rng.integers(0, 256, (args.batch, ctx, size, size, 3), dtype=np.uint8),
        actions=rng.integers(0, 3, (args.batch, ctx + args.frames)),
        context=ctx,
        length=args.frames,
        steps=args.denoise_steps,
        compile=not args.no_compile,
    )
    rollout = prepare_rollout(req, model, cfg, args.method, ae, str(device))
    plan, store = rollout.plan, rollout.store
    ran = min(args.plan_steps or len(plan), len(plan))

    def steps(n: int) -> None:
        run_plan(
            plan[:n],
            store,
            rollout.denoiser,
            rollout.actions,
            source=rollout.denoiser.source,
            poses=rollout.denoiser.poses,
        )

    def seconds(fn) -> float:
        sync(device)
        begin = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - begin

    encode = seconds(lambda: write_context(store, ae, req.frames))
    warmup = seconds(lambda: steps(1))  # then re-run from step 0: the timed plan is whole
    sampling = seconds(lambda: steps(ran))
    # frames past the timed steps are still unknown (NaN): decode zeros there, for the timing
    generated = store.levels[0][:, ctx : ctx + args.frames].nan_to_num()
    decode = seconds(lambda: decode_frames(ae, generated))
    per_step = sampling / ran
    return {
        "mode": "generate",
        "attention": cfg.model.attention,
        "batch": args.batch,
        "context": ctx,
        "frames": args.frames,
        "denoise_steps": args.denoise_steps,
        "guidance": cfg.diffusion.guidance,
        "plan_steps": len(plan),
        "plan_steps_run": ran,
        "extrapolated": ran < len(plan),
        "warmup_step_s": warmup,
        "encode_s": encode,
        "sampling_s": sampling,
        "sampling_s_per_plan_step": per_step,
        "decode_s": decode,
        "total_s": encode + sampling + decode,
        "total_s_extrapolated": encode + per_step * len(plan) + decode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--preset", default="paper", choices=("tiny", "mini", "paper"))
    parser.add_argument("--method", default="millivid")
    parser.add_argument(
        "--variant",
        help="train, batch: a variant of millivid.variants (its method and config, e.g. the "
        "shipped model's millivid-own-level-memory) instead of --method",
    )
    parser.add_argument(
        "--mode", default="train", choices=("train", "rollout", "batch", "generate")
    )
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--denoise-steps", type=int, default=50)
    parser.add_argument("--context", type=int, default=256, help="generate: context frames")
    parser.add_argument("--frames", type=int, default=768, help="generate: generated frames")
    parser.add_argument("--plan-steps", type=int, help="generate: stop after N plan steps")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="config override k=v")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="train: profile 3 steps (rollout: one K/V-reuse step), write the top kernels here",
    )
    parser.add_argument(
        "--sdpa",
        default="auto",
        choices=tuple(SDPA_BACKENDS),
        help="the SDPA backend (the math kernel where it cannot run; auto: PyTorch's choice)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    if args.variant is not None and args.mode not in ("train", "batch"):
        parser.error("--variant: train and batch modes only")
    method = args.method if args.variant is None else VARIANTS[args.variant].method
    result.update(preset=args.preset, method=method, compiled=not args.no_compile)
    if args.variant is not None:  # the variant's method, not --method's default
        result["variant"] = args.variant
    modes = {
        "train": bench_train,
        "rollout": bench_rollout,
        "batch": bench_batch,
        "generate": bench_generate,
    }
    result["sdpa"] = args.sdpa
    with attention_kernel(args.sdpa):
        result.update(modes[args.mode](args, device))
    if device.type == "cuda":
        from matmul_peak import matmul_peak_tflops

        peak = matmul_peak_tflops(device=args.device)
        result["bf16_matmul_peak_tflops"] = peak
        if args.mode == "train":
            result["mfu"] = result["model_tflops_per_s"] / peak
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
