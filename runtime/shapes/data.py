"""Datasets of the shapes world: captioned videos and prompts, deterministic in their seed."""
from __future__ import annotations

import random

import torch

from .render import render, render_prompt
from .world import all_attributes, prompts, split_of


def videos(n: int, seed: int = 0, frames: int = 8, size: int = 16,
           split: str = "train") -> tuple[list[str], torch.Tensor]:
    """n (prompt, video) pairs of a split, combinations drawn with replacement and each clip with its own
    position/speed jitter: (prompts, videos (n, F, 3, H, W) in [-1, 1])."""
    pool = [a for a in all_attributes() if split_of(a) == split]
    rng = random.Random(f"shapes-videos-{split}-{seed}")
    chosen = [pool[rng.randrange(len(pool))] for _ in range(n)]
    clips = torch.stack([render(a, frames, size, seed=rng.randrange(1 << 30)) for a in chosen])
    return [a.prompt for a in chosen], clips


def reference_video(prompt: str, frames: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    """The rendered video of a prompt (F, 3, H, W)."""
    return render_prompt(prompt, frames, size, seed)


__all__ = ["videos", "prompts", "reference_video"]
