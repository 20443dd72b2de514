"""``millivid ae train|encode|export|pooled|recon``: the hierarchical autoencoder's jobs."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from millivid.cli.common import (
    add_device_flag,
    add_preset_flags,
    add_resume_flags,
    config_from_args,
    positive_int,
)
from millivid.cli.video import run_export
from millivid.data.videos import load_video
from millivid.jobs.autoencoder import (
    derive_pooled,
    encode_dataset,
    load_autoencoder,
    recon_grid,
    reconstruction_psnr,
    train_autoencoder,
)


def register(sub: argparse._SubParsersAction) -> None:
    ae = sub.add_parser("ae", help="hierarchical autoencoder: train, encode, export, pooled, recon")
    acts = ae.add_subparsers(dest="ae_command", metavar="ACTION", required=True)
    tr = acts.add_parser("train", help="train on a dataset folder (resumable)")
    add_preset_flags(tr)
    tr.add_argument("--data", type=Path, required=True, help="dataset folder of .npz videos")
    tr.add_argument("--out", type=Path, required=True, help="run folder")
    add_resume_flags(tr)
    add_device_flag(tr)
    tr.add_argument(
        "--max-videos", type=positive_int, default=None, help="use only the first N videos"
    )
    tr.set_defaults(func=_train)
    en = acts.add_parser("encode", help="encode a dataset into a latent cache (resumable)")
    en.add_argument("--ckpt", type=Path, required=True, help="autoencoder run folder")
    en.add_argument("--data", type=Path, required=True, help="dataset folder of .npz videos")
    en.add_argument("--out", type=Path, required=True, help="latent cache folder")
    en.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes reading (decompressing) the next videos while one is encoded; 0: none "
        "(default: min(4, cores))",
    )
    add_device_flag(en)
    en.set_defaults(func=_encode)
    ex = acts.add_parser("export", help="bf16 safetensors + config of a run (small, shippable)")
    ex.add_argument("--ckpt", type=Path, required=True, help="autoencoder run folder")
    ex.add_argument("--out", type=Path, required=True, help="output folder")
    ex.set_defaults(func=run_export)
    po = acts.add_parser(
        "pooled",
        help="a trained hierarchical autoencoder with its coarser levels its own level 0 "
        "mean-pooled (ae.kind = pooled, the paper's Fig. 6 cascaded model; only level 0 decodes)",
    )
    po.add_argument("--ckpt", type=Path, required=True, help="hierarchical autoencoder folder")
    po.add_argument(
        "--data", type=Path, required=True, help="dataset folder whose frames calibrate it"
    )
    po.add_argument("--out", type=Path, required=True, help="run folder")
    add_device_flag(po)
    po.set_defaults(func=_pooled)
    rc = acts.add_parser("recon", help="paper Fig. 5: original and each level's reconstruction")
    rc.add_argument("--ckpt", type=Path, required=True, help="autoencoder run folder")
    rc.add_argument("--video", type=Path, required=True, help="a video .npz")
    rc.add_argument("--out", type=Path, required=True, help="grid .png")
    rc.add_argument("--frames", type=positive_int, default=4, help="frames shown")
    add_device_flag(rc)
    rc.set_defaults(func=_recon)


def _train(args: argparse.Namespace) -> int:
    ckpt = train_autoencoder(
        config_from_args(args),
        args.data,
        args.out,
        args.resume,
        args.device,
        args.max_videos,
        resume_from=args.resume_from,
        continuation=args.continuation,
        continuation_keep=args.continuation_keep,
        overwrite=args.overwrite,
    )
    print(f"checkpoint: {ckpt}")
    return 0


def _encode(args: argparse.Namespace) -> int:
    out = encode_dataset(args.ckpt, args.data, args.out, args.device, args.workers)
    print(f"latent cache: {out}")
    return 0


def _pooled(args: argparse.Namespace) -> int:
    print(f"checkpoint: {derive_pooled(args.ckpt, args.data, args.out, args.device)}")
    return 0


def _recon(args: argparse.Namespace) -> int:
    # a reconstruction does not read the latent statistics: a run stopped before calibration
    # (e.g. looked at between the pieces of its training) shows as it will
    model = load_autoencoder(args.ckpt, args.device, calibrated=False)
    print(f"grid: {recon_grid(model, args.video, args.out, args.frames)}")
    frames = torch.from_numpy(load_video(args.video, keys=("video",)).video)
    for level, psnr in enumerate(reconstruction_psnr(model, frames)):
        print(f"level {level}: PSNR {psnr:.2f} dB")
    return 0
