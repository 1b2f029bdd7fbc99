"""Batch arithmetic: a global batch over the GPUs, then micro-batches and gradient accumulation.

Every GPU processes the same number of samples per optimiser step, in `grad_accum` micro-batches of
`micro_batch`; so global batch = GPUs x micro_batch x grad_accum exactly. The solver picks the largest
micro-batch that fits in memory. Impossible combinations raise BatchError with the arithmetic and the
nearest batches that work.

GRPO: a step is `batch` prompts x `group_size` videos, and the videos (not the groups) are split over
the GPUs, so a group may span ranks. That is sound because advantages are computed on whole groups
after an all-gather of the rewards: one float per video and reward, which costs nothing next to a
rollout. (Keeping groups whole per rank would forbid 8 prompts x 8 videos on 32 GPUs.) A multi-process
GRPO runtime must therefore gather the rewards before it normalises them.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


class BatchError(ValueError):
    """A batch that cannot be laid out on the GPUs; the message shows the arithmetic."""


@dataclass(frozen=True)
class BatchPlan:
    per_gpu: int  # samples each GPU processes per optimiser step
    micro_batch: int  # samples per forward/backward
    grad_accum: int  # micro-batches per optimiser step

    def __post_init__(self):
        if self.micro_batch * self.grad_accum != self.per_gpu:
            raise ValueError(f"micro-batch {self.micro_batch} x {self.grad_accum} accumulation != {self.per_gpu}")


def _neighbours(value: int, step: int) -> tuple[int, int]:
    """The multiples of `step` just below (0 if none) and just above `value`."""
    lower = value // step * step
    return (lower if lower != value else lower - step), -(-value // step) * step


def per_gpu_samples(global_batch: int, world: int, micro_batch: int | None = None) -> int:
    """Samples per GPU per step; `micro_batch` set by the recipe must divide it too."""
    if global_batch < 1 or world < 1:
        raise BatchError(f"global batch {global_batch} over {world} GPUs: both must be at least 1")
    step = world * (micro_batch or 1)
    if global_batch % step == 0:
        return global_batch // world
    lower, upper = _neighbours(global_batch, step)
    over = f"{world} GPUs x micro-batch {micro_batch}" if micro_batch else f"{world} GPUs"
    hint = f"use {upper}" + (f" or {lower}" if lower > 0 else "")
    raise BatchError(f"global batch {global_batch} is not divisible by {over}; {hint}")


def per_gpu_videos(prompts: int, group_size: int, world: int) -> int:
    """GRPO: videos per GPU per step from `prompts` x `group_size` rollouts (groups may span GPUs)."""
    videos = prompts * group_size
    if videos % world == 0:
        return videos // world
    # p x group_size splits over the GPUs exactly when p is a multiple of world / gcd(group_size, world):
    # the nearest such batches are closed-form (a scan over candidates hung at batch = 1e9).
    step = world // math.gcd(group_size, world)
    lower, upper = _neighbours(prompts, step)
    options = [f"{p} ({p * group_size} videos)" for p in (upper, lower) if p > 0]
    raise BatchError(f"{prompts} prompts x group_size {group_size} = {videos} videos per step do not split over "
                     f"{world} GPUs; use batch = {' or '.join(options)}")


def divisors_ascending(n: int) -> list[int]:
    """The divisors of n by trial division up to sqrt(n): O(sqrt n), not O(n)."""
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
        d += 1
    return small + large[::-1]


def solve(per_gpu: int, fits: Callable[[int], bool]) -> BatchPlan | None:
    """The largest micro-batch dividing `per_gpu` for which `fits(micro)` holds; None if not even 1 fits.

    Memory grows with the micro-batch, so `fits` holds for the small divisors and not past some point:
    a binary search over the divisors calls it O(log n) times (it was called once per candidate)."""
    divisors = divisors_ascending(per_gpu)
    lo, hi = 0, len(divisors) - 1  # invariant: every divisor below lo fits, every one above hi does not
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(divisors[mid]):
            lo = mid + 1
        else:
            hi = mid - 1
    if hi < 0:
        return None
    micro = divisors[hi]
    return BatchPlan(per_gpu, micro, per_gpu // micro)
