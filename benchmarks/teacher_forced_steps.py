"""How good is each rollout step's sample when everything it sees is true? Teacher-forced.

    python benchmarks/teacher_forced_steps.py --ckpt checkpoints/mini/millivid \\
        --ae checkpoints/mini/ae --videos 4 --frames 256 [--forced-levels 1,2,3]

A rollout's frames are only as good as its steps, and each step sees what earlier steps made.
Here every step of the method's rollout plan over ``--frames`` frames after ``--context`` runs
once on held-out world videos (at the world's own length: the same videos for every model) with
its whole context (and memory frames) taken from the true video's latents instead of generated
ones, with the same sampler, noise and context noise as ``millivid generate``. Each step's sample is decoded at its own level and compared with the
true frames: PSNR and ``sharpness`` (detail relative to the truth's; 1 = as much), per target
level, next to the truth's own latents decoded at that level (what a perfect step would give).
A step that loses detail given the truth loses it in a rollout too; a rollout blurrier than its
teacher-forced steps loses detail through what it generated itself. ``--forced-levels`` says
which levels stay true (default ``all``): the steps of the other levels write their samples
back, and later steps read them, as in a rollout (``none``: a plain rollout, scored per level);
e.g. ``1,2,3`` keeps the coarse levels true and lets level 0 read its own frames, ``0`` the
converse: which level's generated context costs the detail. ``--levels 3`` runs only the steps
that target those levels (every level true), e.g. to compare sampler settings at the coarsest
level, where a rollout's plan is decided, at a fraction of the cost.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from millivid.autoencoder.model import to_frames  # noqa: E402
from millivid.evaluate.horizons import ci95  # noqa: E402
from millivid.evaluate.image_metrics import psnr, sharpness  # noqa: E402
from millivid.jobs.autoencoder import load_autoencoder  # noqa: E402
from millivid.model.memory import select_memory  # noqa: E402
from millivid.plan import make_plan  # noqa: E402
from millivid.plan.sources import ContextSource  # noqa: E402
from millivid.rollout.engine import context_span, host_randn, step_generator  # noqa: E402
from millivid.rollout.generate import load_video_model  # noqa: E402
from millivid.rollout.request import GenerateRequest  # noqa: E402
from millivid.rollout.resumable import prepare_rollout, write_context  # noqa: E402
from millivid.world import TEST_SEED_OFFSET, make_videos  # noqa: E402


@torch.no_grad()
def teacher_forced_samples(
    rollout, context: int, frames: int, seed: int, forced: set[int], levels: set[int] | None = None
) -> list[torch.Tensor]:
    """Per level, the samples [B, T, h, w, C] of every plan step whose target lies in the
    generated frames (with ``levels``: only the steps that target those levels); NaN where no
    step targets a frame at that level. ``rollout.store`` holds the true latents of every frame:
    those of the ``forced`` levels stay; at the other levels the frames after the context are
    unknown until a step writes its sample there."""
    store, denoiser = rollout.store, rollout.denoiser
    source = ContextSource(denoiser.source)
    for level in range(len(store.levels)):
        if level not in forced:
            store.known[level, context:] = False  # a step reading ahead would be an error
    out = [torch.full_like(z, float("nan")) for z in store.levels]
    steps = [
        (index, step)
        for index, step in enumerate(rollout.plan)
        if step.target.stop > context
        and step.target.start < context + frames
        and (levels is None or step.target.level in levels)
    ]
    for index, step in tqdm(steps, desc="teacher-forced steps", unit="step"):
        t = step.target
        ctx = [store.read(context_span(span, source)) for span in step.context]
        target = store.levels[t.level]
        shape = (target.shape[0], t.frames, *target.shape[2:])
        generator = step_generator(seed, index)
        noise = host_randn(shape, generator, target.device)
        memory = None
        if step.memory is not None:
            chosen = select_memory(denoiser.poses, step)
            memory = (store.gather(source.stored_level(step.memory.level), chosen), chosen)
        sample = denoiser(step, ctx, rollout.actions, noise, memory=memory, generator=generator)
        out[t.level][:, t.start : t.stop] = sample
        if t.level not in forced:
            store.write(t, sample)
    return out


@torch.no_grad()
def decode(ae, latents: torch.Tensor, level: int) -> torch.Tensor:
    """uint8 [N, H, W, 3] of level-``level`` latents [N, h, w, C]."""
    return to_frames(ae.decode_float(latents, level)).cpu()


def level_scores(ae, samples, truth_latents, video, context: int, frames: int) -> dict:
    """Per level with samples: per-video mean PSNR and sharpness of the decoded samples and of
    the truth's latents decoded at that level, over the generated frames the level holds."""
    out = {}
    for level, z in enumerate(samples):
        done = ~torch.isnan(z[0, :, 0, 0, 0])
        done[:context] = False
        done[context + frames :] = False
        idx = done.nonzero().flatten()
        if not len(idx):
            continue
        rows = {"sample": [], "truth_latents": []}
        for b in range(z.shape[0]):
            gt = torch.from_numpy(video[b][idx.numpy()])
            for name, lat in (("sample", z), ("truth_latents", truth_latents[level])):
                pred = decode(ae, lat[b, idx], level)
                rows[name].append(
                    (float(psnr(pred, gt).mean()), float(np.nanmean(sharpness(pred, gt).numpy())))
                )
        out[level] = {k: np.array(v) for k, v in rows.items()} | {"frames": len(idx)}
    return out


def forced_levels(text: str, levels: int, flag: str = "--forced-levels") -> set[int]:
    """``flag``'s value: all, none or a comma list of levels below ``levels``."""
    if text == "all":
        return set(range(levels))
    if text == "none":
        return set()
    try:
        out = {int(x) for x in text.split(",")}
    except ValueError:
        out = {-1}
    if not out <= set(range(levels)):
        raise SystemExit(f"{flag} {text!r}: all, none or levels 0..{levels - 1}")
    return out


def load_against(path: Path | None, ckpt: str, videos: int, frames: int) -> dict | None:
    """The ``--json`` result at ``path``, refused unless it scored the same checkpoint, videos and
    frames (its per-video values pair with this run's only then)."""
    if path is None:
        return None
    try:
        other = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--against {path}: not a result of this script ({e})") from None
    want = {"ckpt": ckpt, "videos": videos, "frames": frames}
    differ = [k for k, v in want.items() if other.get(k) != v]
    if differ or not isinstance(other.get("levels"), dict):
        raise SystemExit(f"--against {path}: another run (differs in {differ or ['levels']})")
    return other


def print_paired(levels: dict, against: dict, path: Path) -> None:
    """Per target level both runs scored: this run's sample PSNR minus ``against``'s, paired over
    the videos (mean ± 95 %)."""
    forced = against["forced_levels"]
    print(f"\n| target level | PSNR sample − {path.name}'s (true context at levels "
          f"{forced or 'none'}), paired |")  # fmt: skip
    print("|---|---|")
    for level, s in levels.items():
        if str(level) in against["levels"]:
            d = np.array(s["psnr_sample"]) - np.array(against["levels"][str(level)]["psnr_sample"])
            print(f"| {level} | {d.mean():+.2f} ± {ci95(d):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True, help="video-model run or checkpoint folder")
    parser.add_argument("--ae", default="checkpoints/mini/ae")
    parser.add_argument("--videos", type=int, default=4, help="held-out world videos")
    parser.add_argument("--context", type=int, default=256, help="context frames")
    parser.add_argument("--frames", type=int, default=256, help="generated frames scored")
    parser.add_argument("--sample-steps", type=int, help="DDIM steps (default: the model's)")
    parser.add_argument("--context-noise", type=float, help="default: the model's")
    parser.add_argument("--eta", type=float, help="DDIM eta (default: the model's; 0 = DDIM)")
    parser.add_argument(
        "--forced-levels",
        default="all",
        help="levels whose context stays true: all, none, or a comma list (e.g. 1,2,3)",
    )
    parser.add_argument(
        "--levels",
        help="run only the steps that target these levels, comma list (e.g. 3; the other "
        "levels must stay true: --forced-levels all)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument(
        "--against",
        type=Path,
        help="the --json of another run on the same checkpoint, videos and frames (e.g. other "
        "--forced-levels): also the per-video paired PSNR differences, this run minus that one",
    )
    args = parser.parse_args()
    against = load_against(args.against, args.ckpt, args.videos, args.frames)

    model, cfg, method = load_video_model(Path(args.ckpt), args.device)
    ae = load_autoencoder(Path(args.ae), args.device)
    plan = make_plan(method, cfg.plan, args.context, args.context + args.frames)
    total = max(s.last_frame for s in plan)
    if total > cfg.world.frames:  # the videos are the world's own length for every method
        raise SystemExit(
            f"the plan reaches frame {total}, past the world's {cfg.world.frames}-frame videos: "
            "fewer --context or --frames"
        )
    world = replace(cfg.world, test_context_frames=args.context)
    seeds = [TEST_SEED_OFFSET + 3000 + i for i in range(args.videos)]
    v = make_videos(seeds, world, "cpu", test=True)
    video = v.video.numpy()  # uint8 [B, T, H, W, 3]
    req = GenerateRequest(
        frames=video,
        actions=v.actions.numpy(),
        poses=v.poses.numpy(),
        context=args.context,
        length=args.frames,
        seed=args.seed,
        steps=args.sample_steps,
        context_noise=args.context_noise,
        eta=args.eta,
    )
    rollout = prepare_rollout(req, model, cfg, method, ae, args.device)
    forced = forced_levels(args.forced_levels, len(rollout.store.levels))
    if rollout.derive is not None and len(forced) < len(rollout.store.levels):
        raise SystemExit(f"{method} re-encodes its coarse levels: only --forced-levels all")
    levels = None
    if args.levels:
        levels = forced_levels(args.levels, len(rollout.store.levels), "--levels")
        if len(forced) < len(rollout.store.levels):
            raise SystemExit("--levels needs --forced-levels all (the skipped steps write nothing)")
    write_context(rollout.store, ae, video[:, :total])  # every frame, every level: the truth
    truth = [z.clone() for z in rollout.store.levels]
    samples = teacher_forced_samples(rollout, args.context, args.frames, args.seed, forced, levels)
    scores = level_scores(ae, samples, truth, video, args.context, args.frames)
    print(
        f"{method} ({args.ckpt}), steps over frames {args.context + 1}–"
        f"{args.context + args.frames}, {args.videos} videos "
        f"({rollout.denoiser.diffusion.sample_steps} DDIM steps, eta "
        f"{rollout.denoiser.diffusion.sample_eta}, context noise "
        f"{rollout.denoiser.diffusion.sample_context_noise}), true context at levels "
        f"{sorted(forced) or 'none'}; mean ± 95 % over videos\n"
    )
    print("| target level | frames | PSNR sample | PSNR truth's latents | sharpness sample | "
          "sharpness truth's latents | sample − truth's latents, sharpness |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    result = {"ckpt": args.ckpt, "method": method, "videos": args.videos}
    result |= {"frames": args.frames, "forced_levels": sorted(forced), "levels": {}}
    for level, s in scores.items():
        a, t = s["sample"], s["truth_latents"]
        d = a[:, 1] - t[:, 1]
        print(
            f"| {level} | {s['frames']} | {a[:, 0].mean():.2f} | {t[:, 0].mean():.2f} | "
            f"{a[:, 1].mean():.3f} | {t[:, 1].mean():.3f} | {d.mean():+.3f} ± {ci95(d):.3f} |"
        )
        result["levels"][level] = {
            "frames": s["frames"],
            "psnr_sample": a[:, 0].tolist(),
            "psnr_truth_latents": t[:, 0].tolist(),
            "sharpness_sample": a[:, 1].tolist(),
            "sharpness_truth_latents": t[:, 1].tolist(),
        }
    if against is not None:
        print_paired(result["levels"], against, args.against)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
