"""Rendering a prompt into its video: a coloured shape gliding at constant speed over a flat background."""
from __future__ import annotations

import random

import torch

from .world import BACKGROUNDS, COLOURS, DIRECTIONS, Attributes

SUPERSAMPLE = 4  # anti-aliasing: render at 4x and average, so small shapes keep a recognisable outline


def _mask(shape: str, size: int, cy: float, cx: float, radius: float) -> torch.Tensor:
    n = size * SUPERSAMPLE
    coords = (torch.arange(n, dtype=torch.float32) + 0.5) / SUPERSAMPLE
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    dy, dx = y - cy, x - cx
    if shape == "circle":
        inside = dy.pow(2) + dx.pow(2) <= radius ** 2
    elif shape == "square":
        half = radius * 0.89  # equal area-ish with the circle
        inside = (dy.abs() <= half) & (dx.abs() <= half)
    elif shape == "triangle":  # apex up, base down
        h = radius * 1.9
        top, bottom = cy - h / 2, cy + h / 2
        frac = ((y - top) / h).clamp(0, 1)
        inside = (y >= top) & (y <= bottom) & (dx.abs() <= frac * radius * 1.1)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return torch.nn.functional.avg_pool2d(inside.float()[None, None], SUPERSAMPLE)[0, 0]


def render(attrs: Attributes, frames: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    """(F, 3, H, W) in [-1, 1]. The seed jitters start position and speed, never the attributes."""
    rng = random.Random(seed)
    radius = size * 0.2
    speed = size * 0.06 * rng.uniform(0.85, 1.15)
    dy, dx = DIRECTIONS[attrs.direction]
    travel = speed * (frames - 1)
    cy = size / 2 - dy * travel / 2 + rng.uniform(-0.5, 0.5)
    cx = size / 2 - dx * travel / 2 + rng.uniform(-0.5, 0.5)
    fg = torch.tensor(COLOURS[attrs.colour]).view(3, 1, 1)
    bg = torch.tensor(BACKGROUNDS[attrs.background]).view(3, 1, 1)
    video = torch.empty(frames, 3, size, size)
    for t in range(frames):
        m = _mask(attrs.shape, size, cy + dy * speed * t, cx + dx * speed * t, radius)
        video[t] = bg * (1 - m) + fg * m
    return video


def motion_per_frame(size: int) -> float:
    return size * 0.06


