"""The sampling schedule of rectified-flow models (ALGORITHMS.md §0)."""
from __future__ import annotations

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
