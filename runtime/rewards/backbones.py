"""Frozen feature backbones for ViPO maps and feature consistency: per-frame patch tokens (F, N, D)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from runtime.errors import JobError


class PixelPatches:
    """The built-in weight-free backbone of the shapes world: each patch's mean colour and contrast."""

    def __init__(self, patch: int = 4):
        self.patch = patch

    def __call__(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        f, c, h, w = video.shape
        p = self.patch
        mean = F.avg_pool2d(video.float(), p)  # (F, 3, h/p, w/p)
        sq = F.avg_pool2d(video.float().pow(2), p)
        std = (sq - mean.pow(2)).clamp(min=0).sqrt()
        feats = torch.cat([mean, std], 1)
        gh, gw = feats.shape[-2:]
        return feats.flatten(2).transpose(1, 2), (gh, gw)


class Dinov2Patches:
    """A transformers Dinov2Model loaded from a local folder; returns its patch tokens (CLS dropped)."""

    def __init__(self, path: Path):
        from transformers import Dinov2Model

        self.model = Dinov2Model.from_pretrained(path).eval().requires_grad_(False)
        self.size = self.model.config.image_size
        self.patch = self.model.config.patch_size

    @torch.no_grad()
    def __call__(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = F.interpolate((video.float() + 1) / 2, size=(self.size, self.size), mode="bilinear", align_corners=False)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        out = self.model(pixel_values=(x - mean) / std).last_hidden_state[:, 1:]
        g = self.size // self.patch
        return out, (g, g)


def load_backbone(name: str, recipe_dir: Path | None, family: str):
    """`shapes` (or any backbone for a shapes-world model) -> PixelPatches; else a local DINOv2 folder."""
    if name == "shapes" or family == "shapes":
        return PixelPatches()
    path = Path(name)
    if not path.is_absolute() and recipe_dir is not None:
        path = recipe_dir / path
    if not path.is_dir():
        raise JobError(f"ViPO backbone `{name}` is not a local folder ({path}); point `backbone` at a saved "
                       "DINOv2 model (transformers format)")
    return Dinov2Patches(path)
