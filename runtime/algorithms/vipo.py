"""ViPO advantage maps from frozen-backbone patch features (ALGORITHMS.md §2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rescale_component(z: torch.Tensor) -> torch.Tensor:
    """(max - z) / (max - min); a constant component maps to 0.5."""
    lo, hi = z.min(), z.max()
    if float(hi - lo) <= 1e-12:
        return torch.full_like(z, 0.5)
    return (hi - z) / (hi - lo)


def minmax(x: torch.Tensor) -> torch.Tensor:
    lo, hi = x.min(), x.max()
    if float(hi - lo) <= 1e-12:
        return torch.ones_like(x)
    return (x - lo) / (hi - lo)


def gaussian_blur2d(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable gaussian smoothing of (F, h, w) maps, reflect-padded."""
    radius = max(1, int(round(3 * sigma)))
    xs = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-xs.pow(2) / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    x = maps.float().unsqueeze(1)
    pad_h, pad_w = min(radius, x.shape[-2] - 1), min(radius, x.shape[-1] - 1)
    if pad_w > 0:
        x = F.pad(x, (pad_w, pad_w, 0, 0), mode="reflect")
        x = F.conv2d(x, kernel[radius - pad_w: radius + pad_w + 1].view(1, 1, 1, -1))
    if pad_h > 0:
        x = F.pad(x, (0, 0, pad_h, pad_h), mode="reflect")
        x = F.conv2d(x, kernel[radius - pad_h: radius + pad_h + 1].view(1, 1, -1, 1))
    return x.squeeze(1)


def advantage_map(patch_tokens: torch.Tensor, grid: tuple[int, int], latent_shape: tuple[int, int, int],
                  sigma: float = 1.0) -> torch.Tensor:
    """Per-frame patch tokens (F, N, D) on an (h, w) grid -> a map in [0, 1] of the latent (T, H, W).

    Tokens are mean-centred, projected on 3 principal components, each rescaled, combined with
    explained-variance weights, smoothed, min-max normalised, resized and normalised again. A constant
    map (or degenerate features) gives all ones, which is exactly scalar GRPO."""
    f, n, d = patch_tokens.shape
    h, w = grid
    x = patch_tokens.float().reshape(f * n, d)
    x = x - x.mean(0, keepdim=True)
    if float(x.abs().max()) <= 1e-12:
        return torch.ones(latent_shape)
    _, sv, vh = torch.linalg.svd(x, full_matrices=False)
    k = min(3, vh.shape[0])
    comps = x @ vh[:k].T  # (F*N, k)
    var = sv[:k].pow(2)
    weights = var / var.sum().clamp(min=1e-12)
    combined = sum(weights[j] * rescale_component(comps[:, j]) for j in range(k))
    maps = combined.reshape(f, h, w)
    maps = minmax(gaussian_blur2d(maps, sigma))
    resized = F.interpolate(maps[None, None], size=latent_shape, mode="trilinear", align_corners=False)[0, 0]
    return minmax(resized)


def dense_advantage(advantage_map_: torch.Tensor, advantage: torch.Tensor | float) -> torch.Tensor:
    """A_p = M_p * A."""
    return advantage_map_ * torch.as_tensor(advantage, dtype=torch.float32)


def map_statistics(maps: torch.Tensor) -> dict[str, float]:
    """What the maps did to the scalar advantages: their mean, spread and range, and the share of
    positions they damp below half (all ones, mean 1 and std 0, is exactly scalar GRPO)."""
    m = maps.float()
    return {"mean": float(m.mean()), "std": float(m.std()) if m.numel() > 1 else 0.0, "min": float(m.min()),
            "max": float(m.max()), "below_half": float((m < 0.5).float().mean())}


def dense_advantages(maps: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """(N, T, H, W) maps and (N,) composed scalar advantages -> (N, T, H, W): each sample's map times
    its advantage (what grpo.update takes the per-position PPO term against)."""
    return maps.float() * advantages.float().view(-1, *([1] * (maps.dim() - 1)))
