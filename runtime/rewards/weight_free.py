"""Rewards computed from pixels alone (VBench-like): flicker, smoothness, optical flow, sharpness.

Every metric takes videos (B, F, 3, H, W) in [-1, 1], measures them in grayscale at `side` x `side`
and returns a (B,) float tensor in [0, 1], higher meaning more of the named property. They are
deterministic (no randomness; OpenCV's Farneback flow is a fixed computation).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import DeviceNeeds, Reward

# Scales that map each raw measurement to [0, 1]; our choice, set so that typical generated videos
# land mid-range: a mean frame-to-frame change of 0.25 (of the full grey range) is total flicker, a mean
# midpoint-prediction error of 0.1 is total jerkiness, 1 px of mean flow at 64 px is e^-1 of the way.
FLICKER_SCALE = 0.25
SMOOTHNESS_SCALE = 0.1
FLOW_SCALE_PX = 1.0
SHARPNESS_SCALE = 0.01
DYNAMIC_THRESHOLD_PX = 1.0


def _gray(videos: torch.Tensor, side: int) -> torch.Tensor:
    """(B, F, side, side) grayscale in [0, 1]: area-averaged when shrinking, bilinear when enlarging."""
    b, f = videos.shape[:2]
    g = ((videos.float().clamp(-1, 1) + 1) / 2).mean(2)
    h, w = g.shape[-2:]
    if (h, w) != (side, side):
        mode = "area" if min(h, w) >= side else "bilinear"
        extra = {} if mode == "area" else {"align_corners": False}
        g = F.interpolate(g.reshape(b * f, 1, h, w), size=(side, side), mode=mode, **extra)
        g = g.reshape(b, f, side, side)
    return g


def temporal_flicker(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """1 - mean absolute frame-to-frame change / FLICKER_SCALE (VBench's flicker, rescaled)."""
    g = _gray(videos, side)
    if g.shape[1] < 2:
        return torch.ones(g.shape[0])
    change = (g[:, 1:] - g[:, :-1]).abs().mean((1, 2, 3))
    return (1 - change / FLICKER_SCALE).clamp(0, 1)


def motion_smoothness(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """How well each middle frame is predicted by the mean of its two neighbours: constant-velocity
    (or no) motion is predicted well, jumps and noise are not (VBench uses a learned interpolator)."""
    g = _gray(videos, side)
    if g.shape[1] < 3:
        return torch.ones(g.shape[0])
    err = (g[:, 1:-1] - 0.5 * (g[:, :-2] + g[:, 2:])).abs().mean((1, 2, 3))
    return (1 - err / SMOOTHNESS_SCALE).clamp(0, 1)


def flow_magnitudes(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """(B, F-1, side, side) Farneback optical-flow magnitudes between consecutive frames, in pixels."""
    import cv2
    import numpy as np

    g = (_gray(videos, side) * 255).round().to(torch.uint8).cpu().numpy()
    out = np.zeros((g.shape[0], max(g.shape[1] - 1, 0), side, side), dtype=np.float32)
    for b in range(g.shape[0]):
        for t in range(g.shape[1] - 1):
            # pyr_scale 0.5, 2 levels, 9 px window, 3 iterations, poly_n 5, poly_sigma 1.1: small frames
            flow = cv2.calcOpticalFlowFarneback(g[b, t], g[b, t + 1], None, 0.5, 2, 9, 3, 5, 1.1, 0)
            out[b, t] = np.sqrt((flow ** 2).sum(-1))
    return torch.from_numpy(out)


def flow_magnitude(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """Mean optical-flow magnitude squashed to [0, 1): 1 - exp(-mean / FLOW_SCALE_PX); static -> 0."""
    mag = flow_magnitudes(videos, side)
    if mag.shape[1] == 0:
        return torch.zeros(videos.shape[0])
    return 1 - torch.exp(-mag.mean((1, 2, 3)) / FLOW_SCALE_PX)


def dynamic_degree(videos: torch.Tensor, side: int = 64, threshold: float = DYNAMIC_THRESHOLD_PX) -> torch.Tensor:
    """Fraction of consecutive frame pairs whose top-5% flow magnitude (mean of the largest 5% of
    pixels) exceeds `threshold` pixels: 0 for a static video, 1 when every step moves."""
    mag = flow_magnitudes(videos, side)
    if mag.shape[1] == 0:
        return torch.zeros(videos.shape[0])
    flat = mag.flatten(2)
    k = max(1, int(0.05 * flat.shape[-1]))
    top = flat.topk(k, dim=-1).values.mean(-1)
    return (top > threshold).float().mean(1)


def sharpness(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """Variance of the Laplacian per frame, averaged, squashed: 1 - exp(-var / SHARPNESS_SCALE)."""
    g = _gray(videos, side)
    b, f = g.shape[:2]
    kernel = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]], device=g.device).view(1, 1, 3, 3)
    lap = F.conv2d(g.reshape(b * f, 1, side, side), kernel).reshape(b, f, -1)
    return 1 - torch.exp(-lap.var(-1).mean(1) / SHARPNESS_SCALE)


METRICS = {"temporal_flicker": temporal_flicker, "motion_smoothness": motion_smoothness,
           "flow_magnitude": flow_magnitude, "dynamic_degree": dynamic_degree, "sharpness": sharpness}


class WeightFreeReward(Reward):
    """A `weight_free { metric, resize }` spec: one head named after the metric. No weights: it shrinks
    the frames on their own device and finishes on the CPU (optical flow is OpenCV's)."""

    def __init__(self, metric: str, resize: int = 64):
        if metric not in METRICS:
            raise ValueError(f"unknown weight-free metric {metric!r}; known: {', '.join(METRICS)}")
        self.name, self.heads, self.side = metric, (metric,), resize
        # "gpu": it follows the rollouts to their device (no weights to move), where shrinking them is
        # cheap; ~1 GiB of full-size temporaries while it does
        self.needs = DeviceNeeds(device="gpu", memory_gib=1.0)

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        # Shrink to grey `side` x `side` where the videos already are: copying full-size GPU rollouts
        # to the host first cost 2.8 s for 16 x 33 frames at 480x832 on an H100 machine, 20x the
        # metric itself (bench/results/gpu_reward_concurrency.json).
        return {self.name: METRICS[self.name](videos, self.side).float().cpu()}
