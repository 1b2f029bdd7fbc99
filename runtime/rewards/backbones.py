"""Frozen feature backbones for ViPO maps and feature consistency.

A backbone maps one video (F, 3, H, W) in [-1, 1] to per-frame features: patch tokens (F, N, D) on an
(h, w) grid, plus one global vector per frame (the CLS token, or the mean patch token for backbones
without one). Calling it returns `(patch tokens, grid)`, the form ViPO uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from runtime.errors import JobError

from .loading import from_local
from .pixels import (IMAGENET_MEAN, IMAGENET_STD, normalize, read_processor_config, resize_center_crop, square_side,
                     to_unit)

SHAPES = "shapes"
FRAMES_PER_FORWARD = 16  # bounds activation memory for long videos


@dataclass
class FrameFeatures:
    patches: torch.Tensor  # (F, N, D)
    grid: tuple[int, int]  # (h, w), h * w == N
    pooled: torch.Tensor  # (F, D): the CLS token, or the mean patch token


class Backbone:
    def features(self, video: torch.Tensor) -> FrameFeatures:
        raise NotImplementedError

    def __call__(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        feats = self.features(video)
        return feats.patches, feats.grid

    def to(self, device: str | torch.device) -> "Backbone":
        return self


class ShapesPatches(Backbone):
    """The shapes world's weight-free backbone: for each `patch` x `patch` square, a constant 1 and the
    mean and standard deviation of each colour channel in [0, 1] (D = 7). Fixed and deterministic; the
    constant keeps cosine similarities defined on black patches and vanishes under ViPO's mean-centring."""

    def __init__(self, patch: int = 4):
        self.patch = patch

    def features(self, video: torch.Tensor) -> FrameFeatures:
        x = to_unit(video)
        mean = F.avg_pool2d(x, self.patch)  # (F, 3, h, w)
        std = (F.avg_pool2d(x.pow(2), self.patch) - mean.pow(2)).clamp(min=0).sqrt()
        feats = torch.cat([torch.ones_like(mean[:, :1]), mean, std], 1)
        grid = (feats.shape[-2], feats.shape[-1])
        patches = feats.flatten(2).transpose(1, 2)
        return FrameFeatures(patches, grid, patches.mean(1))


class Dinov2Patches(Backbone):
    """A transformers Dinov2Model from a local folder. Frames are resized and cropped as its processor
    config says (else squared to the model's `image_size`) and normalised with ImageNet statistics."""

    def __init__(self, path: Path):
        from transformers import Dinov2Model

        self.model = from_local(Dinov2Model, path).eval().requires_grad_(False)
        cfg = self.model.config
        proc = read_processor_config(path, "preprocessor_config.json")
        self.crop = square_side(proc.get("crop_size"), cfg.image_size)
        self.side = square_side(proc.get("size"), self.crop)
        self.mean = tuple(proc.get("image_mean", IMAGENET_MEAN))
        self.std = tuple(proc.get("image_std", IMAGENET_STD))
        self.skip = 1 + getattr(cfg, "num_register_tokens", 0)  # CLS (+ registers) precede the patches
        self.grid = (self.crop // cfg.patch_size, self.crop // cfg.patch_size)

    def to(self, device: str | torch.device) -> "Dinov2Patches":
        self.model.to(device)
        return self

    def features(self, video: torch.Tensor) -> FrameFeatures:
        param = next(self.model.parameters())
        x = normalize(resize_center_crop(to_unit(video), self.side, self.crop), self.mean, self.std)
        hidden = torch.cat([self.model(pixel_values=chunk.to(param.device, param.dtype)).last_hidden_state
                            for chunk in x.split(FRAMES_PER_FORWARD)]).float()
        return FrameFeatures(hidden[:, self.skip:], self.grid, hidden[:, 0])


def load_backbone(name_or_path: str, recipe_dir: Path | None = None, family: str | None = None) -> Backbone:
    """`"shapes"` (or any backbone asked for by a shapes-world model) -> ShapesPatches; otherwise a
    local DINOv2 folder (relative paths are taken from the recipe's folder). Never downloads."""
    if name_or_path == SHAPES or family == SHAPES:
        return ShapesPatches()
    path = Path(name_or_path)
    if not path.is_absolute() and recipe_dir is not None:
        path = Path(recipe_dir) / path
    if not (path / "config.json").is_file():
        raise JobError(f"backbone `{name_or_path}` is not a local model folder ({path} has no config.json); "
                       "point it at a DINOv2 model saved in transformers format, or use \"shapes\" in the "
                       "shapes world")
    return Dinov2Patches(path)
