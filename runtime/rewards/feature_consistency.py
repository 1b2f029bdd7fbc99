"""Subject / background consistency (VBench-style) from a frozen backbone's frame features."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .backbones import Backbone, Dinov2Patches
from .base import DeviceNeeds, Reward


def frame_consistency(feats: torch.Tensor) -> torch.Tensor:
    """feats (F, ..., D) -> scalar in [0, 1]: for each frame after the first, the mean of its cosine
    similarity to the first frame and to its predecessor (over any middle axes), averaged, floored at 0."""
    if feats.shape[0] < 2:
        return torch.ones(())
    to_first = F.cosine_similarity(feats[1:], feats[:1], dim=-1, eps=1e-8)
    to_prev = F.cosine_similarity(feats[1:], feats[:-1], dim=-1, eps=1e-8)
    return (0.5 * (to_first.mean() + to_prev.mean())).clamp(0, 1)


def border_mask(grid: tuple[int, int]) -> torch.Tensor:
    """(h * w,) True on the outermost ring of patches, where the background usually is."""
    h, w = grid
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = True, True, True, True
    return mask.flatten()


class FeatureConsistencyReward(Reward):
    """`feature_consistency { target }`: subject = the per-frame global token (CLS or mean patch),
    background = each border patch compared with itself over time."""

    def __init__(self, target: str, backbone: Backbone):
        if target not in ("subject", "background"):
            raise ValueError(f"feature consistency target must be subject or background, not {target!r}")
        self.target, self.backbone = target, backbone
        self.name = f"{target}_consistency"
        self.heads = (self.name,)
        weights = isinstance(backbone, Dinov2Patches)
        gib = sum(p.numel() * p.element_size() for p in backbone.model.parameters()) / 2**30 if weights else 0.0
        self.needs = DeviceNeeds(device="gpu" if weights else "cpu", memory_gib=round(gib + 0.5 * weights, 3),
                                 max_batch=8)

    def _move(self, device: torch.device) -> None:
        self.backbone.to(device)

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        return {self.name: torch.stack([self._one(v) for v in videos])}

    def _one(self, video: torch.Tensor) -> torch.Tensor:
        feats = self.backbone.features(video)
        if self.target == "subject":
            return frame_consistency(feats.pooled)
        return frame_consistency(feats.patches[:, border_mask(feats.grid).to(feats.patches.device)])
