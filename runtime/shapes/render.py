"""Rendering a prompt into its video: a coloured shape gliding at constant speed over a flat background.

The shape's size and the path length are fixed fractions of the frame, so any frame count and size
render the same scene; the seed jitters only the start position and speed, never the attributes."""
from __future__ import annotations

import random

import torch

from .world import BACKGROUNDS, COLOURS, DIRECTIONS, Attributes, parse_prompt

SUPERSAMPLE = 8  # anti-aliasing: render at 8x and average (1/8 px steps keep centroid motion smooth)
RADIUS = 0.2  # shape radius, as a fraction of the frame size
TRAVEL = 0.42  # distance covered over the clip, as a fraction of the frame size (kept inside the frame)
SPEED_JITTER, START_JITTER = 0.15, 0.5  # relative speed and absolute start (px) jitter per seed


def shape_mask(shape: str, size: int, cy, cx) -> torch.Tensor:
    """Coverage in [0, 1] of `shape` centred at (cy, cx) in pixel units (pixel i spans [i, i + 1)):
    (size, size) for scalar centres, (F, size, size) for (F,) tensors of centres. The triangle points
    up; (cy, cx) is the centre of its bounding box."""
    cy_t, cx_t = torch.as_tensor(cy, dtype=torch.float32), torch.as_tensor(cx, dtype=torch.float32)
    radius = RADIUS * size
    coords = (torch.arange(size * SUPERSAMPLE, dtype=torch.float32) + 0.5) / SUPERSAMPLE
    dy = coords.view(1, -1, 1) - cy_t.reshape(-1, 1, 1)
    dx = coords.view(1, 1, -1) - cx_t.reshape(-1, 1, 1)
    if shape == "circle":
        inside = dy.pow(2) + dx.pow(2) <= radius ** 2
    elif shape == "square":
        half = radius * 0.89  # about the circle's area
        inside = (dy.abs() <= half) & (dx.abs() <= half)
    elif shape == "triangle":
        height = radius * 1.9
        frac = ((dy + height / 2) / height).clamp(0, 1)  # 0 at the apex, 1 at the base
        inside = (dy.abs() <= height / 2) & (dx.abs() <= frac * radius * 1.1)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    mask = torch.nn.functional.avg_pool2d(inside.float().unsqueeze(1), SUPERSAMPLE)[:, 0]
    return mask[0] if cy_t.dim() == 0 else mask


def centres(attrs: Attributes, frames: int, size: int, seed: int) -> torch.Tensor:
    """(F, 2) shape centres (y, x): constant velocity along the prompt's direction, centred path."""
    rng = random.Random(seed)
    travel = TRAVEL * size * rng.uniform(1 - SPEED_JITTER, 1 + SPEED_JITTER)
    dy, dx = DIRECTIONS[attrs.direction]
    progress = torch.linspace(-0.5, 0.5, frames) if frames > 1 else torch.zeros(1)
    start = torch.tensor([size / 2 + rng.uniform(-START_JITTER, START_JITTER),
                          size / 2 + rng.uniform(-START_JITTER, START_JITTER)])
    return start + progress.unsqueeze(1) * travel * torch.tensor([float(dy), float(dx)])


def render(attrs: Attributes, frames: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    """The video of `attrs`: (F, 3, H, W) in [-1, 1]."""
    fg = torch.tensor(COLOURS[attrs.colour]).view(3, 1, 1)
    bg = torch.tensor(BACKGROUNDS[attrs.background]).view(3, 1, 1)
    c = centres(attrs, frames, size, seed)
    m = shape_mask(attrs.shape, size, c[:, 0], c[:, 1]).unsqueeze(1)
    return bg * (1 - m) + fg * m


def render_prompt(prompt: str, frames: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    attrs = parse_prompt(prompt)
    if attrs is None:
        raise ValueError(f"not a shapes-world prompt: {prompt!r}")
    return render(attrs, frames, size, seed)
