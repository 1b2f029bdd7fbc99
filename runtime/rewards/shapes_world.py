"""The shapes world's exact rewards (`runtime/shapes/rewards.py`) behind the reward protocol."""
from __future__ import annotations

import torch

from .base import DeviceNeeds, Reward


class ShapesWorldReward(Reward):
    """A `shapes { metric }` spec: alignment (needs the prompts), smoothness, flicker or sharpness."""

    def __init__(self, metric: str):
        from runtime.shapes import rewards as shapes

        if metric not in shapes.METRICS:
            raise ValueError(f"unknown shapes metric {metric!r}; known: {', '.join(shapes.METRICS)}")
        self.fn = shapes.METRICS[metric]
        self.name, self.heads = metric, (metric,)
        self.needs = DeviceNeeds(device="cpu")

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        return {self.name: self.fn(videos.cpu(), list(prompts)).float()}
