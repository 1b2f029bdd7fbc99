"""Datasets of the shapes world: captioned videos and prompts, deterministic in their seed.

Generation is bounded before it starts (the schema's bound on `n`, and the clips' bytes against this
machine's memory) and stops at a stop request (Ctrl-C, preemption) between clips, rather than running
for hours deaf to SIGINT."""
from __future__ import annotations

import os
import random
from collections.abc import Callable

import torch

from runtime.errors import JobError, StopRequested
from vpolang.schema.entities import MAX_SHAPES_VIDEOS

from .render import render, render_prompt
from .world import all_attributes, prompts, split_of

FLOAT_BYTES = 4


def videos(n: int, seed: int = 0, frames: int = 8, size: int = 16, split: str = "train",
           should_stop: Callable[[], bool] | None = None) -> tuple[list[str], torch.Tensor]:
    """n (prompt, video) pairs of a split, combinations drawn with replacement and each clip with its own
    position/speed jitter: (prompts, videos (n, F, 3, H, W) in [-1, 1]). Raises StopRequested as soon
    as `should_stop()` is true."""
    check_size(n, frames, size)
    pool = [a for a in all_attributes() if split_of(a) == split]
    rng = random.Random(f"shapes-videos-{split}-{seed}")
    chosen = [pool[rng.randrange(len(pool))] for _ in range(n)]
    clips = torch.empty((n, frames, 3, size, size))  # filled in place: one copy of the set, not two
    for i, attrs in enumerate(chosen):
        if should_stop is not None and should_stop():
            raise StopRequested(f"stopped generating shapes videos after {i} of {n}")
        clips[i] = render(attrs, frames, size, seed=rng.randrange(1 << 30))
    return [a.prompt for a in chosen], clips


def check_size(n: int, frames: int, size: int) -> None:
    """Refuses, before any work, a set over the schema's bound or larger than this machine's memory."""
    if not 1 <= n <= MAX_SHAPES_VIDEOS:
        raise JobError(f"shapes.videos: n = {n} is outside 1..{MAX_SHAPES_VIDEOS}")
    need = n * frames * 3 * size * size * FLOAT_BYTES
    have = physical_memory()
    if have is not None and need > have:
        raise JobError(f"shapes.videos: {n} clips of {frames} frames at {size}x{size} need "
                       f"{need / 2**30:.1f} GiB, more than this machine's {have / 2**30:.1f} GiB; lower `n`")


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that says
        return None


def reference_video(prompt: str, frames: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    """The rendered video of a prompt (F, 3, H, W)."""
    return render_prompt(prompt, frames, size, seed)


__all__ = ["videos", "prompts", "reference_video"]
