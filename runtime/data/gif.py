"""Sample grids and GIFs for reports and for a quick look at what a stage produces."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from vpolang.atomic import atomic_path
from .video import to_uint8


def grid(videos: torch.Tensor, cols: int | None = None, pad: int = 2, fill: float = 1.0) -> torch.Tensor:
    """(N, F, 3, H, W) -> one video (F, 3, rows*(H+pad)+pad, cols*(W+pad)+pad), tiles row by row,
    separated by `pad` pixels of `fill` (1.0: white)."""
    n, f, c, h, w = videos.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = torch.full((f, c, rows * (h + pad) + pad, cols * (w + pad) + pad), fill, dtype=videos.dtype)
    for i, video in enumerate(videos):
        top, left = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        out[:, :, top:top + h, left:left + w] = video.cpu()
    return out


def save_gif(video: torch.Tensor, path: str | Path, fps: int = 8, scale: int = 1) -> Path:
    """A looping GIF of (F, 3, H, W) in [-1, 1], or of a grid when given (N, F, 3, H, W); `scale`
    enlarges tiny videos by pixel repetition so they can be seen. Written atomically."""
    from PIL import Image

    if video.dim() == 5:
        video = grid(video)
    frames = [Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
              for img in to_uint8(video)]
    path = Path(path)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                       duration=max(20, round(1000 / fps)), optimize=False, disposal=1)
    return path
