"""Pixel preparation shared by the model-based rewards, in torch so gradients reach the videos."""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frame_indices(total: int, wanted: int) -> torch.Tensor:
    """`wanted` evenly spaced frame indices over `total` frames (all of them when there are fewer)."""
    if wanted >= total:
        return torch.arange(total)
    return torch.linspace(0, total - 1, wanted).round().long()


def sample_frames(videos: torch.Tensor, wanted: int) -> torch.Tensor:
    """(B, F, 3, H, W) -> (B, min(F, wanted), 3, H, W), evenly spaced."""
    return videos[:, frame_indices(videos.shape[1], wanted).to(videos.device)]


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (frames.float().clamp(-1, 1) + 1) / 2


def resize_center_crop(frames: torch.Tensor, side: int, crop: int) -> torch.Tensor:
    """(N, 3, H, W): shortest edge to `side` (bicubic, antialiased), then a centred `crop` square."""
    h, w = frames.shape[-2:]
    scale = side / min(h, w)
    size = (max(crop, round(h * scale)), max(crop, round(w * scale)))
    if size != (h, w):
        frames = F.interpolate(frames, size=size, mode="bicubic", align_corners=False, antialias=True)
    top, left = (size[0] - crop) // 2, (size[1] - crop) // 2
    return frames[..., top:top + crop, left:left + crop]


def normalize(frames: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    return (frames - m) / s


def read_processor_config(folder: Path, *names: str) -> dict:
    """The first of the named processor JSON files that exists in `folder` ({} when none does)."""
    for name in names:
        path = Path(folder) / name
        if path.is_file():
            return json.loads(path.read_text())
    return {}


def square_side(value, default: int) -> int:
    """A processor `size` / `crop_size` entry (int or {"height", "shortest_edge", ...}) as one side."""
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        for key in ("shortest_edge", "height", "width"):
            if key in value:
                return int(value[key])
    return default
