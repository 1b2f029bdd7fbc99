"""The batch solver: even splits, the largest micro-batch that fits, and errors that show the arithmetic."""
from __future__ import annotations

import pytest

from vpolang.estimate import Clip, Dpo, Grpo, estimate_job
from vpolang.estimate.batch import BatchError, BatchPlan, per_gpu_samples, per_gpu_videos, solve

from .common import WAN_1_3B, cluster


def test_even_splits():
    assert per_gpu_samples(32, 16) == 2
    assert per_gpu_samples(8, 8) == 1
    assert per_gpu_samples(32, 8, micro_batch=2) == 4


@pytest.mark.parametrize("batch, world, micro, message", [
    (30, 8, None, "global batch 30 is not divisible by 8 GPUs; use 32 or 24"),
    (30, 8, 1, "global batch 30 is not divisible by 8 GPUs x micro-batch 1; use 32 or 24"),
    (40, 8, 2, "global batch 40 is not divisible by 8 GPUs x micro-batch 2; use 48 or 32"),
    (16, 24, None, "global batch 16 is not divisible by 24 GPUs; use 24"),  # nothing below
    (12, 8, None, "global batch 12 is not divisible by 8 GPUs; use 16 or 8"),
])
def test_indivisible_batches_show_the_arithmetic(batch, world, micro, message):
    with pytest.raises(BatchError) as info:
        per_gpu_samples(batch, world, micro_batch=micro)
    assert str(info.value) == message


def test_grpo_splits_videos_not_groups():
    # 8 prompts x 8 videos over 32 GPUs: 2 videos each, a group spans 4 GPUs (rewards are all-gathered)
    assert per_gpu_videos(8, 8, 32) == 2
    assert per_gpu_videos(3, 4, 4) == 3
    with pytest.raises(BatchError) as info:
        per_gpu_videos(3, 2, 4)
    assert str(info.value) == ("3 prompts x group_size 2 = 6 videos per step do not split over 4 GPUs; "
                               "use batch = 4 (8 videos) or 2 (4 videos)")
    with pytest.raises(BatchError, match=r"use batch = 4 \(32 videos\)$"):
        per_gpu_videos(1, 8, 32)


def test_solver_takes_the_largest_micro_batch_that_fits():
    assert solve(12, lambda micro: micro <= 5) == BatchPlan(per_gpu=12, micro_batch=4, grad_accum=3)
    assert solve(12, lambda micro: True) == BatchPlan(12, 12, 1)
    assert solve(7, lambda micro: micro < 7) == BatchPlan(7, 1, 7)  # 7 is prime
    assert solve(4, lambda micro: False) is None
    with pytest.raises(ValueError):
        BatchPlan(per_gpu=6, micro_batch=4, grad_accum=2)


def test_estimates_lay_out_micro_batches_and_accumulation():
    # 64 pairs over 8 H100s: 8 pairs per GPU; at 17 frames several pairs fit per micro-batch on 80 GiB
    est = estimate_job(Dpo(clip=Clip.of(17, "240p"), batch=64, steps=10, backward="decoupled"), WAN_1_3B, cluster())
    assert est.micro_batch * est.grad_accum == 8 and est.micro_batch > 1 and est.fits
    # 81 frames: not even one pair fits without checkpointing (about 99 GiB of activations), so it is on
    big = estimate_job(Dpo(clip=Clip.of(81, "480p"), batch=64, steps=10, backward="decoupled"), WAN_1_3B, cluster())
    assert big.checkpointing and big.fits and big.micro_batch * big.grad_accum == 8
    forced = estimate_job(Dpo(clip=Clip.of(81, "480p"), batch=64, steps=10, backward="decoupled",
                              checkpointing=False), WAN_1_3B, cluster())
    assert (forced.micro_batch, forced.grad_accum, forced.checkpointing, forced.fits) == (1, 8, False, False)
    with pytest.raises(BatchError, match="do not split over 8 GPUs"):
        estimate_job(Grpo(clip=Clip.of(33, "480p"), batch=3, group_size=2, steps=1, sample_steps=10), WAN_1_3B,
                     cluster())


def test_solver_asks_fits_a_logarithmic_number_of_times():
    # 2**40 has 41 divisors; 720720 has 240: a binary search asks about ten times, not once per candidate
    for per_gpu, limit in ((2**40, 1000), (720720, 5000), (999_999_937, 1)):  # the last one is prime
        calls = []
        plan = solve(per_gpu, lambda micro: calls.append(micro) or micro <= limit)
        assert plan.micro_batch == max(d for d in _divisors(per_gpu) if d <= limit)
        assert len(calls) <= 9, len(calls)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0] + [n // d for d in range(1, int(n ** 0.5) + 1)
                                                                     if n % d == 0]


def test_grpo_batch_suggestions_are_closed_form_for_huge_batches():
    import time

    start = time.perf_counter()
    with pytest.raises(BatchError, match=r"use batch = 1000000000 \(4000000000 videos\) or 999999996"):
        per_gpu_videos(999_999_999, 4, 16)
    assert time.perf_counter() - start < 0.1  # the scan over every candidate took seconds at 1e8
