"""Small synthetic videos for the data tests: smooth enough for lossy codecs, distinct per frame."""
from __future__ import annotations

import math

import pytest
import torch


def moving_square(frames: int = 6, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
    """(F, 3, H, W) in [-1, 1]: a soft-edged square sliding over a gentle gradient."""
    g = torch.Generator().manual_seed(seed)
    colour = torch.rand(3, 1, 1, generator=g) * 1.2 - 0.6
    y = torch.linspace(-1, 1, h).view(h, 1)
    x = torch.linspace(-1, 1, w).view(1, w)
    out = []
    for t in range(frames):
        cx = -0.5 + t / max(1, frames - 1)
        inside = torch.sigmoid((0.35 - torch.maximum((x - cx).abs(), y.abs())) * 12)
        background = torch.stack([0.3 * x.expand(h, w), 0.3 * y.expand(h, w), torch.full((h, w), -0.2)])
        out.append(background * (1 - inside) + colour * inside)
    return torch.stack(out).clamp(-1, 1)


def frame_id_video(frames: int, h: int = 16, w: int = 16) -> torch.Tensor:
    """Frame i is a flat grey whose level encodes i, to check which frames a reader picked."""
    levels = torch.tensor([level_of(i) for i in range(frames)])
    return levels.view(frames, 1, 1, 1).expand(frames, 3, h, w).clone()


def level_of(i: int) -> float:
    return -1 + (20 * i + 10) / 127.5


def id_of(frame: torch.Tensor) -> int:
    return math.floor(((float(frame.mean()) + 1) * 127.5) / 20)


@pytest.fixture
def square():
    return moving_square
