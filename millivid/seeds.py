"""Every seed millivid derives from other numbers (pure Python, no torch).

Random draws are functions of a few integers (a run's seed, a DDP rank, a step index, …), so a
resumed run or rollout draws exactly the numbers an uninterrupted one would. Each stream of
randomness has one function here, all built on ``derive_seed``: a sum of the parts, each times
its own scale. The formulas are frozen: changing one changes the training batches or rollout
noise drawn with it, which resumed runs and recorded results depend on.
"""

from __future__ import annotations

from collections.abc import Sequence

INT64_MAX = 2**63 - 1  # training seeds are reduced modulo this: non-negative, within int64


def derive_seed(*parts: int, scales: Sequence[int], modulus: int | None = None) -> int:
    """``sum(part * scale)`` over ``parts`` and ``scales`` (one scale per part), reduced modulo
    ``modulus`` when given (Python's ``%``: the result lies in ``[0, modulus)``).

    ``derive_seed(seed, index, scales=(1_000_003, 1))`` = ``seed * 1_000_003 + index``.
    """
    if len(parts) != len(scales):
        raise ValueError(f"derive_seed: {len(parts)} parts but {len(scales)} scales; one each")
    value = sum(part * scale for part, scale in zip(parts, scales, strict=True))
    return value if modulus is None else value % modulus


def train_step_seed(seed: int, rank: int, step: int) -> int:
    """Seed of training batch ``step`` on DDP rank ``rank``, and of the global RNG for that step."""
    return derive_seed(seed, rank, step, scales=(1_000_003, 10_007, 1), modulus=INT64_MAX)


def rollout_step_seed(seed: int, index: int) -> int:
    """Seed of the target noise of rollout step ``index`` of a rollout with ``seed``; not reduced
    (unlike ``train_step_seed``), as rollouts have always drawn it."""
    return derive_seed(seed, index, scales=(1_000_003, 1))


def context_noise_seed(start: int, level: int) -> int:
    """Seed of the conditioning-augmentation noise on a rollout step's coarse context, from the
    step's target start frame and level only."""
    return derive_seed(start, level, scales=(104_729, 7))


def discarded_noise_seed(start: int, level: int) -> int:
    """Seed of the noise of a step's discarded targets (mirrored FramePack), from the step's
    target start frame and level only: the same for every rollout seed."""
    return derive_seed(start, level, scales=(7919, 1))
