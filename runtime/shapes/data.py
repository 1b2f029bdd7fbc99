"""Datasets of the shapes world: captioned videos and prompts, deterministic in their seed."""
from __future__ import annotations

import random

import torch

from .render import render
from .world import all_attributes, parse_prompt, prompts, split_of


def videos(n: int, seed: int = 0, frames: int = 8, size: int = 16) -> tuple[list[str], torch.Tensor]:
    """n training-split (prompt, video) pairs; videos (n, F, 3, H, W) in [-1, 1]."""
    pool = [a for a in all_attributes() if split_of(a) == "train"]
    rng = random.Random(f"shapes-videos-{seed}")
    chosen = [pool[rng.randrange(len(pool))] for _ in range(n)]
    clips = torch.stack([render(a, frames, size, seed=rng.randrange(1 << 30)) for a in chosen])
    return [a.prompt for a in chosen], clips


def reference_video(prompt: str, frames: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    attrs = parse_prompt(prompt)
    if attrs is None:
        raise ValueError(f"not a shapes-world prompt: {prompt!r}")
    return render(attrs, frames, size, seed)


__all__ = ["videos", "prompts", "reference_video"]
