"""Does a video model use the context frames its target revisits? Held-out, teacher-forced.

On held-out world videos, draw the model's training steps (target level ``--level``) whose target
revisits a *far* context frame: one at least ``--min-gap`` frames before the target start whose
camera pose is within 2 blocks and 15° of a target frame's (the memory benchmark's revisit rule,
millivid.evaluate.splits). The held-out v-loss of the target tokens is computed three ways, with
the same times and noise (``--t 1``: pure noise, where the target can only come from the
context): with the whole context; with the tokens of the revisited far frames removed; and with
as many other far context frames removed, at the same levels, that the target does not revisit
(the control). A model that retrieves what it saw loses more when the revisited
frames go than when the others do; one that ignores its far context loses the same.

``--memory`` (models with ``plan.memory_frames``): the steps whose target revisits one of the
step's memory frames (retrieved by pose, docs/PLANS.md); removed are those revisited memory
frames, and as control every memory frame. Target frames at the memory level are scored against
copying the revisited memory frame nearest in pose.

``--context-noise T``: the context levels coarser than the target are noised to time T (the
same noise in all three ways), as a model trained with conditioning augmentation
(``diffusion.context_noise``) sees them: does a fine step take its detail from the memory
frames when its coarse context is unsure?

    python benchmarks/revisit_context.py --ckpt checkpoints/mini/millivid --ae checkpoints/mini/ae
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.diffusion import Schedule, diffuse, v_from_x0_eps  # noqa: E402
from millivid.diffusion.schedule import sample_time  # noqa: E402
from millivid.evaluate.config import EvalConfig  # noqa: E402
from millivid.evaluate.horizons import ci95  # noqa: E402
from millivid.evaluate.splits import pose_gaps  # noqa: E402
from millivid.jobs.autoencoder import load_autoencoder  # noqa: E402
from millivid.model.packing import pack  # noqa: E402
from millivid.model.tokens import Tokens, noise_context  # noqa: E402
from millivid.plan import context_source  # noqa: E402
from millivid.plan.training_steps import sample_training_step  # noqa: E402
from millivid.rollout.generate import load_video_model  # noqa: E402
from millivid.world import TEST_SEED_OFFSET, make_videos  # noqa: E402

REVISIT_DISTANCE, REVISIT_YAW = EvalConfig.revisit_distance, EvalConfig.revisit_yaw


def removal_sets(step, poses: np.ndarray, min_gap: int, rng: random.Random):
    """(revisited, control): lists of (level, frame) far context entries, or None when the step's
    target revisits no far context frame or too few unrelated far frames exist."""
    a = step.target.start
    target = poses[step.target.start : step.target.stop]
    far = [
        (s.level, f)
        for s in step.context
        for f in range(max(s.start, 0), min(s.stop, a - min_gap + 1))
    ]
    if not far:
        return None
    gaps = pose_gaps(target, poses[[f for _, f in far]], REVISIT_DISTANCE, REVISIT_YAW).min(0)
    revisited = [e for e, g in zip(far, gaps, strict=True) if g <= 1.0]
    unrelated = [e for e, g in zip(far, gaps, strict=True) if g > 2.0]
    if not revisited:
        return None
    control = []
    for level in sorted({lvl for lvl, _ in revisited}):
        want = sum(lvl == level for lvl, _ in revisited)
        pool = [e for e in unrelated if e[0] == level]
        if len(pool) < want:
            return None
        control += rng.sample(pool, want)
    return revisited, control


def memory_sets(step, poses: np.ndarray, tokens: Tokens):
    """(revisited, every memory frame): lists of (level, frame) of the step's memory frames
    (``tokens``: the packed step, one video), or None when the target revisits none of them."""
    at = slice(step.context_tokens, step.context_tokens + step.memory_tokens)
    valid = tokens.valid[0, at]
    frames = sorted(set(tokens.frame[0, at][valid].tolist()))
    if not frames:
        return None
    target = poses[step.target.start : step.target.stop]
    gaps = pose_gaps(target, poses[frames], REVISIT_DISTANCE, REVISIT_YAW).min(0)
    every = [(step.memory.level, f) for f in frames]
    revisited = [e for e, g in zip(every, gaps, strict=True) if g <= 1.0]
    return (revisited, every) if revisited else None


def without(tokens: Tokens, entries, source: str, memory_slots: slice | None = None) -> Tokens:
    """``tokens`` with the context tokens of the (level, frame) ``entries`` marked invalid (with
    ``memory_slots``: only the tokens in those slots)."""
    level = tokens.level if source == "levels" else tokens.kernel
    drop = torch.zeros_like(tokens.valid)
    for lvl, frame in entries:
        drop |= (level == lvl) & (tokens.frame == frame)
    drop[:, tokens.context_slots :] = False
    if memory_slots is not None:
        keep = torch.ones_like(drop)
        keep[:, memory_slots] = False
        drop &= ~keep
    return replace(tokens, valid=tokens.valid & ~drop)


@torch.no_grad()
def token_errors(
    model, tokens: Tokens, t, noise, schedule: Schedule
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared v-prediction error per target token summed over its real channels, float [B, St],
    and the number of real channels per target token, float [B, St]."""
    x0 = tokens.target_values.float()
    a, s = (x.view(-1, 1, 1) for x in schedule.alpha_sigma(t))
    mask = tokens.channel_mask()[:, tokens.context_slots :].float()
    noise = noise * mask
    pred = model(tokens.with_targets(diffuse(x0, noise, a, s)), t).float()
    err = (pred - v_from_x0_eps(x0, noise, a, s)) ** 2 * mask
    return err.sum(-1), mask.sum(-1)


def recall_oracle(step, poses: np.ndarray, levels, revisited) -> dict[int, tuple[float, float]]:
    """Per target frame that revisits a far context frame held at the target's own level: the MSE
    of copying that context frame's true latent (the nearest in pose), and of predicting zero
    (the latents are normalized): {frame: (oracle, zero)}."""
    lvl = step.target.level
    frames = [f for level, f in revisited if level == lvl]
    if not frames:
        return {}
    z = levels[lvl][0].float()  # [T, h, w, C]
    out = {}
    for f in range(step.target.start, step.target.stop):
        gaps = pose_gaps(poses[[f]], poses[frames], REVISIT_DISTANCE, REVISIT_YAW)[0]
        if gaps.min() <= 1.0:
            g = frames[int(gaps.argmin())]
            out[f] = (float(((z[f] - z[g]) ** 2).mean()), float((z[f] ** 2).mean()))
    return out


def interval(x: np.ndarray) -> str:
    return f"{x.mean():+.4f} ± {ci95(x):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="video-model run or checkpoint folder")
    parser.add_argument("--ae", default="checkpoints/mini/ae")
    parser.add_argument("--videos", type=int, default=8, help="held-out world videos")
    parser.add_argument("--frames", type=int, default=1024, help="frames per video")
    parser.add_argument("--steps", type=int, default=16, help="revisiting steps per video")
    parser.add_argument("--level", type=int, default=0, help="target level of the steps")
    parser.add_argument("--min-gap", type=int, default=16, help="frames before the target start")
    parser.add_argument(
        "--t",
        type=float,
        help="diffusion time of every step (1 = pure noise: the target must "
        "come from the context); default: drawn as in training",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="remove the revisited memory frames (control: every memory frame) instead",
    )
    parser.add_argument(
        "--context-noise",
        type=float,
        default=0.0,
        help="noise the context levels coarser than the target to this diffusion time",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()

    model, cfg, method = load_video_model(Path(args.ckpt), args.device)
    ae = load_autoencoder(Path(args.ae), args.device)
    source = context_source(method)
    one_hot = tuple(float(i == args.level) for i in range(len(cfg.plan.tokens)))
    plan = replace(cfg.plan, level_weights=one_hot)
    seeds = [TEST_SEED_OFFSET + 1000 + i for i in range(args.videos)]
    videos = make_videos(seeds, replace(cfg.world, frames=args.frames), test=True)
    rng = random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    losses, removed, recall = [], [], []  # recall: (model, oracle, zero) per revisit frame
    for i in range(args.videos):
        with torch.no_grad():
            levels = [z.cpu()[None] for z in ae.encode(videos.video[i].to(args.device))]
        actions, poses = videos.actions[i].long()[None], videos.poses[i]
        batch, oracles = [], []
        for _ in range(50 * args.steps):  # draw until enough steps revisit far context
            step = sample_training_step(method, plan, args.frames, rng)
            if not args.memory:
                sets = removal_sets(step, poses.numpy(), args.min_gap, rng)
                if sets is None:
                    continue
            full = pack(
                levels,
                actions,
                step,
                source,
                len(cfg.plan.tokens),
                poses=poses[None] if cfg.model.uses_poses else None,
            )
            slots = None
            if args.memory:
                sets = memory_sets(step, poses.numpy(), full)
                if sets is None:
                    continue
                slots = slice(step.context_tokens, step.context_tokens + step.memory_tokens)
            batch.append([full, *(without(full, entries, source, slots) for entries in sets)])
            oracles.append(recall_oracle(step, poses.numpy(), levels, sets[0]))
            removed.append(len(sets[0]))
            if len(batch) == args.steps:
                break
        if not batch:
            continue
        t = sample_time(len(batch), gen) if args.t is None else torch.full((len(batch),), args.t)
        width = batch[0][0].target_values.shape[-1]
        noise = torch.randn(len(batch), batch[0][0].target_slots, width, generator=gen)
        ways = [Tokens.cat([b[k] for b in batch]) for k in range(3)]
        if args.context_noise:  # one draw of context noise, shared by the three ways
            time = torch.full((len(batch),), args.context_noise)
            eps = torch.randn(ways[0].values.shape, generator=gen)
            scope = cfg.diffusion.context_noise_scope
            ways = [noise_context(w, time, eps, cfg.diffusion.schedule, scope) for w in ways]
        errors = [
            token_errors(
                model, w.to(args.device), t.to(args.device), noise.to(args.device),
                cfg.diffusion.schedule,
            )
            for w in ways
        ]  # fmt: skip
        rows = [(err.sum(1) / count.sum(1)).cpu() for err, count in errors]
        err, count = (x.cpu() for x in errors[0])
        for b, per_frame in enumerate(oracles):
            frames = batch[b][0].frame[0, batch[b][0].context_slots :]
            for f, (oracle, zero) in per_frame.items():
                sel = frames == f
                recall.append((float(err[b, sel].sum() / count[b, sel].sum()), oracle, zero))
        losses.append(torch.stack(rows, 1))
        print(f"video {i}: {len(batch)} revisiting steps", flush=True)
    if not losses:
        sys.exit("no step of these videos revisits a far context frame: use more videos or frames")
    loss = torch.cat(losses).numpy()  # [steps, 3]: full, revisited removed, control removed
    out = {
        "ckpt": args.ckpt,
        "method": method,
        "level": args.level,
        "min_gap": args.min_gap,
        "steps": len(loss),
        "removed_frames_mean": float(np.mean(removed)),
        "loss_full": float(loss[:, 0].mean()),
        "loss_without_revisited": float(loss[:, 1].mean()),
        "loss_without_control": float(loss[:, 2].mean()),
        "memory": args.memory,
        "context_noise": args.context_noise,
    }
    kind = "memory" if args.memory else "far context"
    print(
        f"{method}, target level {args.level}: {len(loss)} steps, "
        f"{out['removed_frames_mean']:.1f} revisited {kind} frames removed on average"
    )
    control = "every memory frame" if args.memory else "as many other far frames"
    print(
        f"v-loss with the whole context {out['loss_full']:.4f}; without the revisited frames "
        f"{out['loss_without_revisited']:.4f} ({interval(loss[:, 1] - loss[:, 0])}); without "
        f"{control} {out['loss_without_control']:.4f} "
        f"({interval(loss[:, 2] - loss[:, 0])})"
    )
    print(f"revisited − control removed: {interval(loss[:, 1] - loss[:, 2])}")
    if recall:
        r = np.array(recall)  # [frames, 3]: model, oracle, zero
        out["recall_frames"] = len(r)
        out["recall_model"], out["recall_oracle"], out["recall_zero"] = map(float, r.mean(0))
        what = "x0 MSE" if args.t == 1 else "v-loss (x0 MSE only at --t 1)"
        print(
            f"{len(r)} target frames revisit a {kind} frame held at their own level: "
            f"model {what} {r[:, 0].mean():.4f}; copying that frame's true latent "
            f"{r[:, 1].mean():.4f}; predicting zero {r[:, 2].mean():.4f}; "
            f"model − copy {interval(r[:, 0] - r[:, 1])}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
