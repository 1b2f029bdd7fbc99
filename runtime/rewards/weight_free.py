"""Rewards computed from pixels alone (VBench-like): flicker, smoothness, optical flow, sharpness."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _gray(videos: torch.Tensor, side: int) -> torch.Tensor:
    """(B, F, side, side) grayscale in [0, 1]."""
    b, f = videos.shape[:2]
    g = ((videos.float().clamp(-1, 1) + 1) / 2).mean(2)
    if g.shape[-1] != side or g.shape[-2] != side:
        g = F.interpolate(g.reshape(b * f, 1, *g.shape[-2:]), size=(side, side), mode="area").reshape(b, f, side, side)
    return g


def temporal_flicker(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """1 - mean absolute frame-to-frame change (normalised so a 0.25 mean change scores 0)."""
    g = _gray(videos, side)
    change = (g[:, 1:] - g[:, :-1]).abs().mean((1, 2, 3))
    return (1 - change / 0.25).clamp(0, 1)


def motion_smoothness(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """How well each middle frame is predicted by the mean of its neighbours (linear motion interpolates)."""
    g = _gray(videos, side)
    if g.shape[1] < 3:
        return torch.ones(g.shape[0])
    err = (g[:, 1:-1] - 0.5 * (g[:, :-2] + g[:, 2:])).abs().mean((1, 2, 3))
    return (1 - err / 0.1).clamp(0, 1)


def _flow_magnitudes(videos: torch.Tensor, side: int) -> torch.Tensor:
    """(B, F-1, side, side) Farneback optical-flow magnitudes in pixels."""
    import cv2
    import numpy as np

    g = (_gray(videos, side) * 255).byte().cpu().numpy()
    out = np.zeros((g.shape[0], max(g.shape[1] - 1, 0), side, side), dtype=np.float32)
    for b in range(g.shape[0]):
        for t in range(g.shape[1] - 1):
            flow = cv2.calcOpticalFlowFarneback(g[b, t], g[b, t + 1], None, 0.5, 2, 9, 3, 5, 1.1, 0)
            out[b, t] = np.sqrt((flow ** 2).sum(-1))
    return torch.from_numpy(out)


def flow_magnitude(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """Mean optical-flow magnitude, squashed to [0, 1] (a static video scores 0)."""
    mag = _flow_magnitudes(videos, side).mean((1, 2, 3))
    return 1 - torch.exp(-mag / 1.0)


def dynamic_degree(videos: torch.Tensor, side: int = 64, threshold: float = 1.0) -> torch.Tensor:
    """Fraction of frame pairs whose top-5% flow magnitude exceeds `threshold` pixels."""
    mag = _flow_magnitudes(videos, side)
    if mag.shape[1] == 0:
        return torch.zeros(videos.shape[0])
    flat = mag.flatten(2)
    k = max(1, int(0.05 * flat.shape[-1]))
    top = flat.topk(k, dim=-1).values.mean(-1)
    return (top > threshold).float().mean(1)


def sharpness(videos: torch.Tensor, side: int = 64) -> torch.Tensor:
    """Variance of the Laplacian, squashed to [0, 1]."""
    g = _gray(videos, side)
    b, f = g.shape[:2]
    kernel = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    lap = F.conv2d(g.reshape(b * f, 1, side, side), kernel).reshape(b, f, -1)
    return 1 - torch.exp(-lap.var(-1).mean(1) / 0.01)


METRICS = {"temporal_flicker": temporal_flicker, "motion_smoothness": motion_smoothness,
           "flow_magnitude": flow_magnitude, "dynamic_degree": dynamic_degree, "sharpness": sharpness}
