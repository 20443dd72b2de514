"""Derived seeds are frozen: training batches and rollout noise depend on their exact values."""

import pytest
import torch

from millivid.diffusion.config import DiffusionConfig
from millivid.plan import Span, Step
from millivid.rollout import dit_denoiser
from millivid.rollout.engine import host_randn, step_generator
from millivid.seeds import derive_seed, discarded_noise_seed, rollout_step_seed, train_step_seed
from millivid.train.trainer import StepBatches

# (seed, rank, step) -> (seed * 1_000_003 + rank * 10_007 + step) % (2**63 - 1)
TRAIN = {
    (0, 0, 0): 0,
    (0, 1, 5): 10_012,
    (1234, 3, 99_999): 1_234_133_722,
    (2**40, 7, 123): 1_099_514_926_310_953_500,
    (-5, 0, 17): 9_223_372_036_849_775_809,
}
# (seed, index) -> seed * 1_000_003 + index, not reduced
ROLLOUT = {
    (0, 0): 0,
    (0, 7): 7,
    (42, 3): 42_000_129,
    (2**31 - 1, 1000): 2_147_490_089_451_941,
    (-1, 2): -1_000_001,
}
# (target start, target level) -> start * 7919 + level
DISCARDED = {(0, 0): 0, (8, 1): 63_353, (129, 3): 1_021_554, (1000, 0): 7_919_000}


@pytest.mark.parametrize(("parts", "value"), TRAIN.items())
def test_train_step_seed_is_unchanged(parts, value):
    assert train_step_seed(*parts) == value


@pytest.mark.parametrize(("parts", "value"), ROLLOUT.items())
def test_rollout_step_seed_is_unchanged(parts, value):
    assert rollout_step_seed(*parts) == value


@pytest.mark.parametrize(("parts", "value"), DISCARDED.items())
def test_discarded_noise_seed_is_unchanged(parts, value):
    assert discarded_noise_seed(*parts) == value


def test_derive_seed_is_a_scaled_sum_reduced_only_when_asked():
    assert derive_seed(2, 3, scales=(10, 1)) == 23
    assert derive_seed(2, 3, scales=(10, 1), modulus=7) == 2
    assert derive_seed(-1, scales=(1,), modulus=7) == 6
    assert derive_seed(scales=()) == 0
    with pytest.raises(ValueError, match="2 parts but 3 scales"):
        derive_seed(1, 2, scales=(1, 2, 3))


def test_trainer_seeds_each_batch_and_the_global_rng_with_train_step_seed():
    class SeedTask:
        def batch(self, step, generator):
            return generator.initial_seed(), torch.initial_seed()

    batches = StepBatches(SeedTask(), seed=1234, rank=3, steps=100_000)
    assert batches[99_999] == (1_234_133_722, 1_234_133_722)


def test_rollout_noise_is_drawn_from_rollout_step_seed():
    noise = host_randn((2, 3), step_generator(42, 3), torch.device("cpu"))
    assert torch.equal(
        noise, torch.randn(2, 3, generator=torch.Generator().manual_seed(42_000_129))
    )


def test_discarded_target_noise_is_drawn_from_the_step_alone(monkeypatch):
    class Packed(Exception):
        pass

    def record(step, context, noise, *args, **kwargs):
        raise Packed(noise)

    monkeypatch.setattr(dit_denoiser, "pack_spans", record)
    denoiser = dit_denoiser.DiTDenoiser(
        None, "patchify", [(2, 2)], DiffusionConfig(), compile=False
    )
    step = Step(Span(1, 8, 10), (), 0, 2, discarded=(Span(2, 10, 12),))
    target = torch.randn(1, 2, 2, 2, 4)
    with pytest.raises(Packed) as packed:
        denoiser(step, [], torch.zeros(1, 12, dtype=torch.long), target)
    noise, extra = packed.value.args[0]
    assert noise is target
    expect = torch.randn(1, 2, 2, 2, 4, generator=torch.Generator().manual_seed(63_353))
    assert torch.equal(extra, expect)  # from the step alone, whatever the rollout seed
