"""Named method variants: what ``millivid reproduce --variants NAME`` trains and rolls out.

A *variant* is a method plus an attention mode (``Variant``): ``millivid`` (full attention, the
paper), ``millivid-cc`` (context-causal: context K/V reused across denoising steps),
``millivid-balanced`` (training steps drawn with equal weight per target level), ``framepack``,
``fullres``, ``hierarchical-framepack`` (FramePack's plan reading hierarchical levels, the
coarse levels of generated frames re-encoded; ``cascaded-framepack``: over the cascaded
autoencoder's levels; both also ``-memory``; ``cascaded-pooled-framepack-memory``: over the
hierarchical autoencoder's level 0, mean-pooled), ``mirrored-framepack``, ``upscale`` (rollout +
upscaling) and ``cascaded`` (MILLIVID's plan over the mean-pooled levels of a single-level autoencoder, trained in the ``ae`` stage when asked for;
``cascaded-memory-aug``: in the recipe of ``millivid-memory-aug``; ``upscale-own-level-memory``
and ``cascaded-own-level-memory``: in the shipped model's, ``millivid-own-level-memory``, with
the memory at each step's own level; ``cascaded-pooled-own-level-memory``: the same over the
hierarchical autoencoder's own level 0, mean-pooled, ``ae.kind = pooled``);
``<method>-poses`` variants condition on the camera poses as well as the actions;
``<method>-poserope`` variants also rotate queries and keys by the pose (``model.pose_rope``);
``<method>-memory`` variants add to every step 4 level-0 frames retrieved by camera pose from
the earlier frames it does not hold in full detail (``plan.memory_frames``; ``-memory-older``:
only from before everything else it sees); ``millivid-recent`` uses the plan whose steps see
their own level's most recent frames; ``millivid-memory-aug`` also trains on noised coarse
context (``diffusion.context_noise``), ``millivid-memory-aug-all``, ``framepack-memory-aug`` and
``fullres-memory-aug`` on every context token noised (``diffusion.context_noise_scope = all``:
the recent frames of a rollout are generated too); ``millivid-coarse-memory`` spends the same memory tokens on
16 level-1 frames (``plan.memory_level``), ``millivid-own-level-memory`` at each step's own
target level and ``millivid-split-memory`` at level 0 for fine and level 1 for coarse steps
(``plan.memory_levels``); ``millivid-level-shift`` is the shipped recipe with a schedule per
latent level (``diffusion.level_shift``), ``millivid-action-adaln`` the shipped recipe with the
actions in the adaLN modulation too (``model.action_adaln``), and
``mirrored-framepack-memory-token`` averages mirrored FramePack's loss per target token
(``diffusion.loss_unit``). The default set is the recipe of the shipped model (which
also trained on ``world.train_actions = revisit``) and its baselines with the same memory
(docs/RESULTS.md): ``millivid-own-level-memory``, ``framepack-memory``, ``fullres-memory``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from millivid.plan.methods import get_method
from millivid.presets import Config


@dataclass(frozen=True)
class Variant:
    """What a variant name trains: a method, an attention mode, an autoencoder kind (``ae``; None:
    the method's, ``Method.ae``), whether training steps are drawn with equal weight per target
    level (``plan.level_weights``) and what steers the frames (``model.condition``: actions,
    poses or both; ``pose_rope``: the poses also rotate queries and keys)."""

    method: str
    attention: str = "full"
    ae: str | None = None
    balanced: bool = False
    condition: str = "actions"
    pose_rope: bool = False
    memory: int = 0  # frames retrieved by camera pose into every step (plan.memory_frames)
    memory_pool: str = "unheld"  # where they come from (plan.memory_pool)
    memory_level: int = 0  # the level they are seen at (plan.memory_level)
    # ... per target level, in the same tokens (plan.memory_levels): "own" = each step's target
    # level, "split" = level 0 for the finer half of the target levels and 1 for the coarser
    memory_by_level: str = ""
    # conditioning augmentation (diffusion.context_noise / sample_context_noise) of the coarse
    # context or of all of it (diffusion.context_noise_scope)
    context_noise: tuple[float, float] = (0.0, 0.0)
    context_noise_scope: str = "coarse"
    level_shift: float = 0.0  # diffusion.level_shift (0: the config's)
    action_adaln: bool = False  # the actions also steer the adaLN modulation (model.action_adaln)
    loss_unit: str = ""  # diffusion.loss_unit ("": the config's)

    @property
    def autoencoder(self) -> str:
        """The autoencoder kind it trains over (``ae.kind``): its own, else its method's."""
        return self.ae or get_method(self.method).ae


# the recipe of the memory models (docs/RESULTS.md): pose-conditioned, pose rotary attention, 4
# memory frames retrieved by pose, noised coarse context; the memory variants below change its
# memory (OWN_LEVEL: the shipped model's)
MEMORY_AUG = Variant(
    "millivid",
    balanced=True,
    condition="both",
    pose_rope=True,
    memory=4,
    context_noise=(0.5, 0.1),
)

# the same with every context token noised (the recent frames a rollout generated too)
ALL_NOISED = replace(MEMORY_AUG, context_noise_scope="all")
# the shipped model's recipe: the same memory tokens at each step's own target level
OWN_LEVEL = replace(MEMORY_AUG, memory_by_level="own")

VARIANTS: dict[str, Variant] = {
    "millivid": Variant("millivid"),
    "millivid-cc": Variant("millivid", "context-causal"),
    "millivid-balanced": Variant("millivid", balanced=True),
    # each step's own level holds the most recent frames (plan method millivid-recent)
    "millivid-recent": Variant("millivid-recent", balanced=True),
    "millivid-recent-poses": Variant("millivid-recent", balanced=True, condition="both"),
    "framepack": Variant("framepack"),
    "fullres": Variant("fullres"),
    # conditioned on the camera poses as well as the actions (model.condition = both)
    "millivid-poses": Variant("millivid", balanced=True, condition="both"),
    "millivid-cc-poses": Variant("millivid", "context-causal", balanced=True, condition="both"),
    # attention scores that depend on the pose difference of two frames (model.pose_rope)
    "millivid-poserope": Variant("millivid", balanced=True, condition="both", pose_rope=True),
    "framepack-poserope": Variant("framepack", condition="both", pose_rope=True),
    "fullres-poserope": Variant("fullres", condition="both", pose_rope=True),
    # + 4 level-0 frames retrieved by camera pose into every step (plan.memory_frames)
    "millivid-memory": Variant(
        "millivid", balanced=True, condition="both", pose_rope=True, memory=4
    ),
    "framepack-memory": Variant("framepack", condition="both", pose_rope=True, memory=4),
    "fullres-memory": Variant("fullres", condition="both", pose_rope=True, memory=4),
    # + the coarse context noised in training (time up to 0.5, the model told the time) and
    # to 0.1 in rollouts, so fine steps learn to doubt generated coarse context
    "millivid-memory-aug": MEMORY_AUG,
    # every context token noised, and the baselines with the same memory so trained (all their
    # context is level 0: the coarse-only noise of millivid-memory-aug does not reach them)
    "millivid-memory-aug-all": ALL_NOISED,
    "framepack-memory-aug": replace(ALL_NOISED, method="framepack", balanced=False),
    "fullres-memory-aug": replace(ALL_NOISED, method="fullres", balanced=False),
    # the same memory tokens spent on 16 frames at level 1 instead of 4 at level 0: more places
    # recalled, each in less detail
    "millivid-coarse-memory": replace(MEMORY_AUG, memory=16, memory_level=1),
    # the same memory tokens at each step's own target level (mini: 4 level-0 frames for the
    # level-0 steps, 16 level-1, 64 level-2 and 256 level-3 frames for the coarser ones)
    "millivid-own-level-memory": OWN_LEVEL,
    # the shipped recipe with the actions in every block's adaLN modulation as well
    "millivid-action-adaln": replace(OWN_LEVEL, action_adaln=True),
    # level 0 for the finer half of the steps' levels, level 1 for the coarser half (mini: 4
    # level-0 frames for the level-0 and level-1 steps, 16 level-1 frames for levels 2 and 3)
    "millivid-split-memory": replace(MEMORY_AUG, memory_by_level="split"),
    # memory frames only from before everything else a step sees (plan.memory_pool = older)
    "millivid-memory-older": Variant(
        "millivid", balanced=True, condition="both", pose_rope=True, memory=4, memory_pool="older"
    ),
    "framepack-memory-older": Variant(
        "framepack", condition="both", pose_rope=True, memory=4, memory_pool="older"
    ),
    "framepack-poses": Variant("framepack", condition="both"),
    "fullres-poses": Variant("fullres", condition="both"),
    # FramePack's plan over hierarchical levels (coarse levels of generated frames re-encoded)
    "hierarchical-framepack": Variant("hierarchical-framepack"),
    "hierarchical-framepack-memory": Variant(
        "hierarchical-framepack", condition="both", pose_rope=True, memory=4
    ),
    # the same plan over the cascaded autoencoder's mean-pooled levels (paper Fig. 7)
    "cascaded-framepack": Variant("hierarchical-framepack", ae="cascaded"),
    "cascaded-framepack-memory": Variant(
        "hierarchical-framepack", ae="cascaded", condition="both", pose_rope=True, memory=4
    ),
    # ... over the hierarchical autoencoder's own level 0, mean-pooled (ae.kind = pooled, as for
    # cascaded-pooled-own-level-memory below): derived, so no autoencoder to train first
    "cascaded-pooled-framepack-memory": Variant(
        "hierarchical-framepack", ae="pooled", condition="both", pose_rope=True, memory=4
    ),
    # half the sequence mirrored coarse targets, discarded at sampling (paper Fig. 7)
    "mirrored-framepack": Variant("mirrored-framepack"),
    "mirrored-framepack-memory": Variant(
        "mirrored-framepack", condition="both", pose_rope=True, memory=4
    ),
    # the same with every target token counting once in the loss (by value its kept level-0
    # frames carry 2.3 % of it: docs/MODEL.md)
    "mirrored-framepack-memory-token": Variant(
        "mirrored-framepack", condition="both", pose_rope=True, memory=4, loss_unit="token"
    ),
    "upscale": Variant("upscale"),
    "cascaded": Variant("cascaded"),
    # the paper's Fig. 6 ablations: MILLIVID's plan over the cascaded autoencoder's mean-pooled
    # levels (in millivid-memory-aug's recipe and in the shipped one), and rollout of the
    # coarsest level then upscaling (its coarse passes run ahead of level 0, so its memory can
    # only be at each step's own level: the shipped recipe)
    "cascaded-memory-aug": replace(MEMORY_AUG, method="cascaded"),
    "cascaded-own-level-memory": replace(OWN_LEVEL, method="cascaded"),
    "upscale-own-level-memory": replace(OWN_LEVEL, method="upscale"),
    # the cascaded ablation as the paper's Fig. 6 words it: the shipped recipe over the mean-
    # pooled levels of the hierarchical autoencoder's own level 0 (ae.kind = pooled), so that
    # both models share level 0 and its decoder and differ in the coarse levels alone
    "cascaded-pooled-own-level-memory": replace(OWN_LEVEL, method="cascaded", ae="pooled"),
    # the shipped recipe with a schedule per level (diffusion.level_shift): Simple Diffusion's
    # shift = resolution / base resolution applied down the pyramid, level l at 2^-l of level 0,
    # so the coarser the level, the less noise at each t
    "millivid-level-shift": replace(OWN_LEVEL, level_shift=0.5),
}


def variant_config(cfg: Config, variant: str) -> tuple[str, Config]:
    """(method, config) of a variant name."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    v = VARIANTS[variant]
    weights = (1.0,) * len(cfg.plan.tokens) if v.balanced else cfg.plan.level_weights
    return v.method, replace(
        cfg,
        model=replace(
            cfg.model,
            attention=v.attention,
            condition=v.condition,
            pose_rope=v.pose_rope,
            action_adaln=v.action_adaln or cfg.model.action_adaln,
        ),
        ae=replace(cfg.ae, kind=v.autoencoder),
        diffusion=replace(
            cfg.diffusion,
            context_noise=v.context_noise[0] or cfg.diffusion.context_noise,
            sample_context_noise=v.context_noise[1] or cfg.diffusion.sample_context_noise,
            context_noise_scope=(
                v.context_noise_scope if any(v.context_noise) else cfg.diffusion.context_noise_scope
            ),
            level_shift=v.level_shift or cfg.diffusion.level_shift,
            loss_unit=v.loss_unit or cfg.diffusion.loss_unit,
        ),
        plan=replace(
            cfg.plan,
            level_weights=weights,
            memory_frames=v.memory or cfg.plan.memory_frames,
            memory_pool=v.memory_pool if v.memory else cfg.plan.memory_pool,
            memory_level=v.memory_level if v.memory else cfg.plan.memory_level,
            memory_levels=memory_levels(v, len(cfg.plan.tokens)) or cfg.plan.memory_levels,
        ),
    )


def memory_levels(v: Variant, levels: int) -> tuple[int, ...]:
    """``plan.memory_levels`` of a variant for a budget of ``levels`` levels (empty: none set)."""
    if not v.memory or not v.memory_by_level:
        return ()
    if v.memory_by_level == "own":
        return tuple(range(levels))
    if v.memory_by_level == "split":
        return tuple(0 if level < levels // 2 else 1 for level in range(levels))
    raise ValueError(f"memory_by_level = {v.memory_by_level!r}: use own or split")
