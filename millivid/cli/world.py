"""``millivid world render``: render one world video to PATH.npz, PATH.mp4 and a trajectory PNG."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from millivid.cli.common import (
    add_device_flag,
    add_preset_flags,
    config_from_args,
    positive_int,
)
from millivid.data.videos import VideoRecord, save_video, write_mp4
from millivid.world import make_videos
from millivid.world.config import WorldConfig
from millivid.world.plot import plot_trajectory
from millivid.world.terrain import generate_worlds


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``world`` and its ``render`` subcommand."""
    world = subparsers.add_parser("world", help="the procedural Minecraft-like world")
    sub = world.add_subparsers(dest="world_command", metavar="ACTION", required=True)
    render = sub.add_parser(
        "render",
        help="render one video (npz + mp4 + top-down trajectory png)",
        description="Render one seeded world video and write PATH.npz, PATH.mp4 and "
        "PATH_trajectory.png.",
    )
    render.add_argument("--seed", type=int, default=0, help="world/agent seed")
    render.add_argument(
        "--frames", type=positive_int, default=None, help="frames (default: preset)"
    )
    render.add_argument(
        "--size", type=positive_int, default=None, help="frame size (default: preset)"
    )
    render.add_argument("--out", required=True, help="output path without extension")
    add_device_flag(render)
    render.add_argument(
        "--test", action="store_true", help="choose the actions as for the test set (paper A.1)"
    )
    add_preset_flags(render)
    render.set_defaults(func=run_render)


def run_render(args: argparse.Namespace) -> int:
    """Render, write the three files atomically and print their paths."""
    cfg = config_from_args(args).world
    changes = {k: v for k, v in (("frames", args.frames), ("size", args.size)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes)
    render_to_files(args.seed, cfg, Path(args.out), args.device, test=args.test)
    return 0


def render_to_files(
    seed: int, cfg: WorldConfig, out: Path, device: str = "cpu", test: bool = False
) -> dict[str, Path]:
    """Render one video; write OUT.npz, OUT.mp4 and OUT_trajectory.png; print and return them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    videos = make_videos([seed], cfg, device, test=test)
    seconds = time.perf_counter() - start
    record = VideoRecord(
        video=videos.video[0].cpu().numpy(),
        actions=videos.actions[0].cpu().numpy(),
        poses=videos.poses[0].cpu().numpy(),
        labels=videos.labels[0].cpu().numpy(),
        depth=videos.depth[0].cpu().numpy(),
    )
    paths = {
        "npz": out.with_name(out.name + ".npz"),
        "mp4": out.with_name(out.name + ".mp4"),
        "trajectory": out.with_name(out.name + "_trajectory.png"),
    }
    save_video(paths["npz"], record)
    write_mp4(paths["mp4"], record.video)
    world = generate_worlds([seed], cfg, "cpu")
    plot_trajectory(
        paths["trajectory"], videos.poses[0].cpu(), world, 0, context=cfg.test_context_frames
    )
    print(
        f"rendered {cfg.frames} frames at {cfg.size}x{cfg.size} in {seconds:.1f} s "
        f"({cfg.frames / seconds:.0f} frames/s)"
    )
    for path in paths.values():
        print(path)
    return paths
