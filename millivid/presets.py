"""The experiment config: one typed dataclass per stage, and the named presets tiny/mini/paper.

``load_preset("mini", ["model.depth=4"])`` is the one way to get a config; every checkpoint saves
the config it was trained with as JSON beside its weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from millivid.autoencoder.config import PRESETS as AE_PRESETS
from millivid.autoencoder.config import TRAIN_PRESETS as AE_TRAIN_PRESETS
from millivid.autoencoder.config import AutoencoderConfig
from millivid.diffusion.config import PRESETS as DIFFUSION_PRESETS
from millivid.diffusion.config import DiffusionConfig
from millivid.model.config import PRESETS as MODEL_PRESETS
from millivid.model.config import DiTConfig
from millivid.plan.config import PRESETS as PLAN_PRESETS
from millivid.plan.config import PlanConfig
from millivid.train.config import PRESETS as TRAIN_PRESETS
from millivid.train.config import TrainConfig, check_train_config
from millivid.typed_config import ConfigError, apply_overrides
from millivid.world.config import PRESETS as WORLD_PRESETS
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


def load_preset(name: str, overrides: list[str] | None = None) -> Config:
    """Named preset with ``--set key.sub=value`` overrides applied."""
    if name not in PRESET_NAMES:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESET_NAMES)})")
    cfg = Config(
        preset=name,
        world=WORLD_PRESETS[name],
        ae=AE_PRESETS[name],
        ae_train=AE_TRAIN_PRESETS[name],
        plan=PLAN_PRESETS[name],
        diffusion=DIFFUSION_PRESETS[name],
        model=MODEL_PRESETS[name],
        video_train=TRAIN_PRESETS[name],
    )
    cfg = apply_overrides(cfg, overrides)
    check_train_config(cfg.ae_train, "ae_train")
    check_train_config(cfg.video_train, "video_train")
    return derive_plan_tokens(cfg, any(o.startswith("plan.tokens=") for o in overrides or ()))


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
