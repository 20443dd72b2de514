"""Held-out v-loss of a trained video model per target level, with and without its context.

Which rollout steps has a model learned? For each target level, a batch of training steps with
that target level is drawn from held-out world videos (test seeds, encoded with the run's
autoencoder), and the v-loss is computed with the context and with every context token dropped
(same steps, times and noise). A ratio near 1 means the model ignores the context of those steps.
The loss is the MSE per latent value, whatever ``diffusion.loss_unit`` the model trained with;
for a method with discarded targets (mirrored FramePack) the kept targets' own loss comes too.

For the coarsest target level it also asks whether the rollout's first generated coarse frame
continues the context: the model's clean estimate at full noise (t = 1) of each step's first
target frame, against the truth, next to the error of simply repeating the previous frame's
latent at that level (MSE per channel; a model that continues the context is at or below it).

    python benchmarks/video_level_loss.py --ckpt checkpoints/mini/millivid --ae checkpoints/mini/ae

``--set KEY=VALUE`` changes the checkpoint's config for the scoring only (settings that leave the
weights' shapes alone, e.g. ``plan.memory_frames=8``: would the trained model use more memory
frames than it was trained with?).

``--context-noise T`` also scores every step with all its context tokens noised to time T and
the model *not* told (as a rollout's generated context is imperfect while the model takes it for
the truth): how sensitive is each target level to an imperfect history?

``--times 0.1,0.5,0.9`` also scores every level's steps with all targets at each of these
diffusion times (same steps and noise): the v-loss, its ratio to the context-dropped one and the
clean estimate's MSE (sigma^2 times the v-loss, on the level's own schedule) per time, i.e. at
which noise levels the model uses its context (``diffusion.level_shift`` moves them per level).

``--levels 3`` scores only those target levels (the coarsest one's first-frame check comes with
it); ``--seed`` draws other steps, times and noise: a second draw of the same check.

``--split train`` scores the first training seeds instead, as the checkpoint's world config
renders them (its own training videos), and ``--split unseen`` videos rendered the same way from
seeds no training run uses (past the test offset); unseen − train is the generalisation gap,
which says whether more training videos could help (``test`` differs from ``train`` in its
trajectories too: the test set's selection rule).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.jobs.autoencoder import load_autoencoder  # noqa: E402
from millivid.jobs.video_task import InMemoryLatents, VideoBatch, VideoTask  # noqa: E402
from millivid.model.tokens import noise_context  # noqa: E402
from millivid.plan import context_source  # noqa: E402
from millivid.plan.training_steps import step_kinds  # noqa: E402
from millivid.rollout.generate import load_video_model  # noqa: E402
from millivid.typed_config import apply_overrides  # noqa: E402
from millivid.world import make_videos, split_seeds  # noqa: E402


def videos_of(split: str, videos: int) -> tuple[list[int], bool]:
    """The world seeds of ``split`` and whether they are rendered as test trajectories."""
    if split == "train":  # the model's own training videos (seeds 0.., its world config)
        return split_seeds(0, videos, test=False), False
    if split == "unseen":  # videos of the training kind from seeds no training run uses
        return split_seeds(2000, videos, test=True), False
    return split_seeds(1000, videos, test=True), True  # held-out test trajectories


def level_losses(args: argparse.Namespace) -> dict:
    model, cfg, method = load_video_model(Path(args.ckpt), args.device)
    cfg = apply_overrides(cfg, args.set)
    ae = load_autoencoder(Path(args.ae), args.device)
    world = replace(cfg.world, frames=args.frames)
    seeds, test = videos_of(args.split, args.videos)
    videos = make_videos(seeds, world, test=test)
    with torch.no_grad():
        latents = [
            (
                [z.cpu() for z in ae.encode(videos.video[i].to(args.device))],
                videos.actions[i].long(),
            )
            for i in range(args.videos)
        ]
    poses = [videos.poses[i] for i in range(args.videos)]
    cfg = replace(
        cfg,
        video_train=replace(cfg.video_train, batch_size=args.batch),
        # every element keeps its context, clean (also for models trained on noised context);
        # the loss per value, whatever the model was trained with (comparable across models)
        diffusion=replace(cfg.diffusion, context_dropout=0.0, context_noise=0.0, loss_unit="value"),
    )
    out = {
        "ckpt": args.ckpt,
        "split": args.split,
        "seeds": seeds,
        "test_trajectories": test,
        "method": method,
        "attention": cfg.model.attention,
        "levels": {},
    }
    targeted = sorted({k.step.target.level for k in step_kinds(method, cfg.plan)})
    if args.levels is not None:
        missing = sorted(set(args.levels) - set(targeted))
        if missing:
            raise SystemExit(f"--levels {missing}: {method} has steps at levels {targeted} only")
        targeted = sorted(set(args.levels))
    for level in targeted:
        # plan.level_weights, one-hot: every step of the batch has its target at ``level``
        one_hot = tuple(float(i == level) for i in range(len(cfg.plan.tokens)))
        lcfg = replace(cfg, plan=replace(cfg.plan, level_weights=one_hot))
        task = VideoTask(lcfg, method, InMemoryLatents(latents, poses))
        batch = task.batch(0, torch.Generator().manual_seed(args.seed))
        every = torch.ones_like(batch.dropped)
        blind = VideoBatch(batch.tokens.drop_context(every), batch.t, batch.noise, every, batch.cin)
        with torch.no_grad():
            loss, metrics = task.loss(model, batch, args.device)
            null, null_metrics = task.loss(model, blind, args.device)
        loss, null = float(loss), float(null)
        row = {"loss": loss, "context_dropped": null, "ratio": loss / null}
        if "kept_loss" in metrics:  # targets kept at sampling, beside discarded ones
            row["kept"] = float(metrics["kept_loss"])
            row["kept_context_dropped"] = float(null_metrics["kept_loss"])
        if args.context_noise:
            noisy = untold_noise(batch, args.context_noise, cfg, args.seed)
            with torch.no_grad():
                row["context_noised"] = float(task.loss(model, noisy, args.device)[0])
        for time in args.times:
            fixed = replace(batch, t=torch.full_like(batch.t, time))
            at = replace(fixed, tokens=blind.tokens, dropped=every)
            with torch.no_grad():
                v_loss = float(task.loss(model, fixed, args.device)[0])
                v_null = float(task.loss(model, at, args.device)[0])
            sigma = float(cfg.diffusion.target_schedule(level).alpha_sigma(torch.tensor(time))[1])
            row.setdefault("times", {})[time] = {
                "loss": v_loss,
                "context_dropped": v_null,
                "ratio": v_loss / v_null,
                "x0_mse": sigma**2 * v_loss,
            }
            print(
                f"  t = {time:.2f}: v-loss {v_loss:.3f}, context dropped {v_null:.3f}, ratio "
                f"{v_loss / v_null:.2f}, clean-estimate MSE {sigma**2 * v_loss:.4f}",
                flush=True,
            )
        out["levels"][level] = row
        print(
            f"target level {level}: v-loss {loss:.3f}, context dropped {null:.3f}, "
            f"ratio {loss / null:.2f}"
            + (f", context noised {row['context_noised']:.3f}" if args.context_noise else "")
            + (
                f"; kept targets: v-loss {row['kept']:.3f}, context dropped "
                f"{row['kept_context_dropped']:.3f}"
                if "kept" in row
                else ""
            ),
            flush=True,
        )
    # patchified targets are level-0 latents, not the coarsest level's (FramePack)
    coarsest = len(cfg.plan.tokens) - 1
    if targeted and targeted[-1] == coarsest and not context_source(method).patchified:
        out["first_frame"] = first_frame_error(model, cfg, method, latents, poses, args)
        print(
            "coarsest level, first target frame: MSE of the clean estimate at full noise "
            f"{out['first_frame']['model']:.3f}, of repeating the previous frame "
            f"{out['first_frame']['copy_last']:.3f}",
            flush=True,
        )
    return out


def untold_noise(batch: VideoBatch, time: float, cfg, seed: int) -> VideoBatch:
    """``batch`` with every context token noised to ``time``, the model not told (its tokens
    marked clean): the same noise for every model scored with ``seed``."""
    tokens = batch.tokens
    gen = torch.Generator().manual_seed(seed + 1)
    eps = torch.randn(tokens.values.shape, generator=gen)
    times = torch.full((tokens.batch,), time)
    noised = noise_context(tokens, times, eps, cfg.diffusion.schedule, "all")
    untold = replace(
        noised, noised=torch.zeros_like(noised.noised), context_time=tokens.context_time
    )
    return VideoBatch(untold, batch.t, batch.noise, batch.dropped, batch.cin)


@torch.no_grad()
def first_frame_error(model, cfg, method, latents, poses, args) -> dict:
    """MSE of the model's x0 estimate at t = 1 for the first target frame of coarsest-level
    steps, and of the previous frame's latent at that level, over ``args.batch`` steps per video
    (one video per batch, so the truth is known from the step's origin)."""
    level = len(cfg.plan.tokens) - 1
    one_hot = tuple(float(i == level) for i in range(len(cfg.plan.tokens)))
    lcfg = replace(cfg, plan=replace(cfg.plan, level_weights=one_hot))
    errs, copies = [], []
    for lat, pose in zip(latents, poses, strict=True):
        task = VideoTask(lcfg, method, InMemoryLatents([lat], [pose]))
        batch = task.batch(0, torch.Generator().manual_seed(args.seed)).to(args.device)
        tokens = batch.tokens
        t = torch.ones_like(batch.t)
        a, s = cfg.diffusion.target_schedule(level).alpha_sigma(t)
        a, s = a.view(-1, 1, 1).float(), s.view(-1, 1, 1).float()
        x0 = tokens.target_values.float()
        z = a * x0 + s * torch.randn_like(x0)
        v = model(tokens.with_targets(z), t).float()
        est = a * z - s * v  # v-parameterisation: x0 = a z - s v
        level_lat = lat[0][level].to(args.device).flatten(1, 2)  # [T, n, C]
        n = level_lat.shape[1]  # tokens per frame at this level
        prev = level_lat[tokens.origin - 1]  # [B, n, C]
        errs.append(((est[:, :n] - x0[:, :n]) ** 2).mean(dim=(1, 2)))
        copies.append(((prev - x0[:, :n]) ** 2).mean(dim=(1, 2)))
    return {"model": float(torch.cat(errs).mean()), "copy_last": float(torch.cat(copies).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="video-model run or checkpoint folder")
    parser.add_argument("--ae", default="checkpoints/mini/ae")
    parser.add_argument("--videos", type=int, default=4, help="held-out world videos")
    parser.add_argument(
        "--split",
        choices=("test", "train", "unseen"),
        default="test",
        help="held-out test-seed videos, the first training seeds, or videos of the training "
        "kind from seeds no training run uses (unseen - train: the generalisation gap)",
    )
    parser.add_argument("--frames", type=int, default=1024, help="frames per video")
    parser.add_argument("--batch", type=int, default=32, help="steps per target level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--levels",
        type=lambda v: [int(x) for x in v.split(",")],
        help="only these target levels, e.g. 3 (default: every level the method has steps at)",
    )
    parser.add_argument(
        "--context-noise",
        type=float,
        default=0.0,
        help="also score with every context token noised to this time, the model not told",
    )
    parser.add_argument(
        "--times",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[],
        help="also score every level at these diffusion times, e.g. 0.1,0.5,0.9",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--set", action="append", default=[], help="KEY=VALUE override of the model's config"
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = level_losses(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
