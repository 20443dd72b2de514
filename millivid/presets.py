"""The experiment config (one typed dataclass per stage) and every value of the named presets
tiny/mini/paper: ``PRESETS`` (the experiment ``Config``), ``EVAL_PRESETS`` (evaluation) and
``REPRODUCE_PRESETS`` (``millivid reproduce``). The stage packages define only their config
dataclasses; this is the one table that says what a preset means (``millivid config`` prints it).

``load_preset("mini", ["model.depth=4"])`` is the one way to get a config; every checkpoint saves
the config it was trained with as JSON beside its weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from millivid.autoencoder.config import AutoencoderConfig
from millivid.diffusion.config import DiffusionConfig
from millivid.evaluate.config import EvalConfig
from millivid.model.config import DiTConfig
from millivid.plan.config import PlanConfig
from millivid.train.config import TrainConfig, check_train_config
from millivid.typed_config import ConfigError, apply_overrides
from millivid.world.config import WorldConfig

PRESET_NAMES = ("tiny", "mini", "paper")


@dataclass(frozen=True)
class Config:
    """Everything one experiment needs, by stage of the data flow."""

    preset: str = "mini"
    world: WorldConfig = field(default_factory=WorldConfig)
    ae: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    ae_train: TrainConfig = field(default_factory=TrainConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    model: DiTConfig = field(default_factory=DiTConfig)
    video_train: TrainConfig = field(default_factory=TrainConfig)


def derive_plan_tokens(cfg: Config, given: bool) -> Config:
    """``plan.tokens`` (the planner's N_l) is the autoencoder's tokens per frame per level, which
    ``ae.image_size``, ``ae.patch`` and ``ae.levels`` decide: derived from them, or, when
    ``given`` with ``--set``, checked against them up front (rather than when the first step is
    packed)."""
    derived = cfg.ae.tokens_per_frame()
    if not given:
        return replace(cfg, plan=replace(cfg.plan, tokens=derived))
    if tuple(cfg.plan.tokens) != derived:
        raise ConfigError(
            f"plan.tokens = {','.join(map(str, cfg.plan.tokens))} but the autoencoder "
            f"(ae.image_size={cfg.ae.image_size}, ae.patch={cfg.ae.patch}, "
            f"ae.levels={cfg.ae.levels}) has {','.join(map(str, derived))} tokens per frame per "
            f"level: set plan.tokens={','.join(map(str, derived))} or leave it out"
        )
    return cfg


# Every stage's values per preset. plan.tokens (the planner's N_l) is not written here: it is
# the autoencoder's tokens per frame per level, derived below (derive_plan_tokens).
_TABLE: dict[str, Config] = {
    "tiny": Config(
        preset="tiny",
        world=WorldConfig(
            size=32, frames=96, test_context_frames=32, view_distance=32.0, world_size=128
        ),
        ae=AutoencoderConfig(
            image_size=32, patch=8, levels=3, channels=4, width=64, depth=2, heads=2
        ),
        ae_train=TrainConfig(steps=200, batch_size=8, warmup_steps=20, checkpoint_every=100),
        plan=PlanConfig(context=(1, 4, 16), target_tokens=16, fullres_context=2),
        diffusion=DiffusionConfig(sample_steps=4),
        model=DiTConfig(width=64, depth=2, heads=2),
        video_train=TrainConfig(
            steps=200, batch_size=8, warmup_steps=20, checkpoint_every=100, log_every=10
        ),
    ),
    "mini": Config(
        preset="mini",
        world=WorldConfig(size=64, frames=1024),
        # ~6.7M parameters: 13.4 MB as bf16 safetensors (the repository keeps it, <= 16 MB)
        ae=AutoencoderConfig(
            image_size=64, patch=8, levels=4, channels=16, width=192, depth=6, heads=3
        ),
        # one H100 for a few minutes
        ae_train=TrainConfig(steps=6_000, batch_size=256, warmup_steps=200, checkpoint_every=1_000),
        plan=PlanConfig(context=(3, 12, 48, 192), target_tokens=192),
        diffusion=DiffusionConfig(),
        # ~7.4M parameters (~15 MB in bf16), under the 16 MB budget of DESIGN.md
        model=DiTConfig(width=256, depth=6, heads=4),
        video_train=TrainConfig(steps=20_000, batch_size=64, warmup_steps=500, ema_decay=0.999),
    ),
    "paper": Config(
        preset="paper",
        world=WorldConfig(size=256, frames=1024, view_distance=56.0, fog_start=24.0),
        # ViT-B encoder and decoder (paper A.2)
        ae=AutoencoderConfig(
            image_size=256, patch=16, levels=4, channels=32, width=768, depth=12, heads=12
        ),
        # paper A.2: 128k steps at batch 224 per device (x8 GPUs)
        ae_train=TrainConfig(
            steps=128_000, batch_size=224, warmup_steps=2_000, checkpoint_every=2_000
        ),
        plan=PlanConfig(context=(3, 12, 48, 192), target_tokens=768),
        diffusion=DiffusionConfig(),
        model=DiTConfig(width=768, depth=12, heads=12),  # DiT-B
        video_train=TrainConfig(steps=192_000, batch_size=48, warmup_steps=2_000),
    ),
}

PRESETS: dict[str, Config] = {
    name: derive_plan_tokens(cfg, given=False) for name, cfg in _TABLE.items()
}

EVAL_PRESETS: dict[str, EvalConfig] = {
    "tiny": EvalConfig(horizon_ends=(8, 32, 96), batch_frames=16),
    "mini": EvalConfig(),
    "paper": EvalConfig(),
}


@dataclass(frozen=True)
class ReproduceConfig:
    """What ``millivid reproduce`` runs beyond the preset's model configs."""

    train_videos: int
    test_videos: int
    context: int  # ground-truth frames before the first generated one
    frames: int  # generated frames per test video
    variants: tuple[str, ...] = (
        "millivid-own-level-memory",
        "framepack-memory",
        "fullres-memory",
    )
    rollout_batch: int = 16
    sample_steps: int | None = None  # DDIM steps (None: the preset's diffusion.sample_steps)
    # noise level of the generated coarse context in rollouts (None: each checkpoint's
    # diffusion.sample_context_noise, the level its variant was trained for)
    sample_context_noise: float | None = None
    sample_eta: float | None = None  # DDIM eta of the rollouts (None: each checkpoint's)
    compile: bool | None = None  # rollouts under torch.compile (None: on CUDA)
    metrics: str = "psnr,ssim,sharpness,probe,action"
    workers: int | None = None  # world-rendering threads, latent-encoding readers (None: auto)
    # False: uncompressed .npz, faster to write and read (mini: 12.6 MB per training video)
    compress: bool = True
    stages: tuple[str, ...] = field(default=())  # empty: all


REPRODUCE_PRESETS: dict[str, ReproduceConfig] = {
    "tiny": ReproduceConfig(train_videos=6, test_videos=2, context=32, frames=64, rollout_batch=2),
    "mini": ReproduceConfig(train_videos=1024, test_videos=64, context=256, frames=768),
    "paper": ReproduceConfig(train_videos=10_000, test_videos=1_000, context=256, frames=768),
}


def load_preset(name: str, overrides: list[str] | None = None) -> Config:
    """``PRESETS[name]`` with ``--set key.sub=value`` overrides applied, the training values
    checked and ``plan.tokens`` derived from the autoencoder."""
    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESET_NAMES)})")
    cfg = apply_overrides(PRESETS[name], overrides)
    check_train_config(cfg.ae_train, "ae_train")
    check_train_config(cfg.video_train, "video_train")
    return derive_plan_tokens(cfg, any(o.startswith("plan.tokens=") for o in overrides or ()))
