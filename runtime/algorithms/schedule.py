"""The sampling schedule of rectified-flow models (ALGORITHMS.md §0)."""
from __future__ import annotations

import math

import torch


def shifted_sigmas(num_steps: int, shift: float) -> torch.Tensor:
    """T+1 noise levels from 1 to 0: `linspace(1, 0, T+1)` shifted by `k s / (1 + (k - 1) s)`.

    A shift k > 1 spends more of the steps at high noise (k = 3 for Wan, 5 for HunyuanVideo); k = 1 is
    the plain linear schedule. Computed in float64 so the endpoints are exactly 1 and 0."""
    if num_steps < 1:
        raise ValueError(f"a schedule needs at least one step, got {num_steps}")
    if shift <= 0:
        raise ValueError(f"the shift must be positive, got {shift}")
    s = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    return (shift * s / (1 + (shift - 1) * s)).float()


GRPO_WARMUP_FRACTION = 0.25  # GRPO's default warm-up, as a share of its steps (docs/algorithms.md §S6)


def warmup_steps(warmup: int | None, steps: int, fraction: float = GRPO_WARMUP_FRACTION) -> int:
    """The warm-up of a run of `steps` steps: `warmup` when set (0: none), unset: `ceil(fraction * steps)`.

    GRPO leaves it unset by default: a policy-gradient batch on a sparse reward is almost all noise
    (docs/algorithms.md §S6), and Adam's first steps are full-size whatever that noise."""
    if warmup is not None:
        return int(warmup)
    return math.ceil(fraction * steps - 1e-9) if steps > 0 else 0


def warmup_lr(step: int, lr: float, warm: int) -> float:
    """The learning rate of 0-based `step`: linear from lr / warm at step 0 up to lr at step warm - 1,
    then constant; warm = 0 is constant from the start."""
    return lr * min(1.0, (step + 1) / warm) if warm > 0 else lr
