"""Windowed GRPO (MixGRPO, arXiv 2507.21802; Flow-GRPO-Fast): which sampling steps are SDE steps.

A rollout of T steps is an ODE everywhere except a window of `size` consecutive SDE steps, the only
steps that carry a log-prob and the only ones trained; so a rollout costs `size` trained passes
instead of `train_fraction x (T - 1)`. The last step is always deterministic (it removes no noise it
adds), so windows lie in steps 0 .. T-2."""
from __future__ import annotations

import torch


def window_start(step: int, num_steps: int, size: int, shift_every: int, stride: int, schedule: str = "slide",
                 seed: int = 0) -> int:
    """The first SDE step of optimiser step `step`'s rollouts.

    `slide` (MixGRPO): the window starts at step 0 (highest noise) and moves `stride` steps later every
    `shift_every` optimiser steps, stopping at the last position `T - 1 - size` (our choice: MixGRPO's
    progressive strategy, without restarting). `random` (Flow-GRPO-Fast): a uniform start in
    [0, T - 1 - size], drawn from (seed, step) so a resumed run draws the same."""
    last = num_steps - 1 - size
    if size < 1 or last < 0:
        raise ValueError(f"a window of {size} SDE steps needs at least {size + 1} sampling steps, got {num_steps}")
    if shift_every < 1 or stride < 1:
        raise ValueError("shift_every and stride are positive")
    if schedule == "slide":
        return min(stride * (step // shift_every), last)
    if schedule == "random":
        gen = torch.Generator().manual_seed((seed * 1_000_003 + step * 7919 + 104_729) % (2**63 - 1))
        return int(torch.randint(0, last + 1, (1,), generator=gen))
    raise ValueError(f"unknown window schedule {schedule!r}; expected slide or random")


def window_steps(step: int, num_steps: int, size: int, shift_every: int, stride: int, schedule: str = "slide",
                 seed: int = 0) -> frozenset[int]:
    """The SDE steps of optimiser step `step`: `size` consecutive steps from `window_start`."""
    start = window_start(step, num_steps, size, shift_every, stride, schedule, seed)
    return frozenset(range(start, start + size))
