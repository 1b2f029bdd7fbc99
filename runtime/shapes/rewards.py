"""Exact rewards of the shapes world, computed from pixels of (B, F, 3, H, W) videos in [-1, 1].

Each is in [0, 1], higher is better. They read the frames the way a person would: find the pixels
that differ from the background, then check their colour, their outline and how they move."""
from __future__ import annotations

import torch

from .world import COLOURS, DIRECTIONS, Attributes, parse_prompt

# Mean of soft area / hard bounding box, measured on rendered videos (16 px): circle 0.79 (0.74-0.88),
# square 1.03, triangle 0.66 (0.58-0.72). Classification picks the nearest.
_FILL = {"circle": 0.80, "square": 1.03, "triangle": 0.64}
_OBJECT_AREA = (0.02, 0.35)  # fraction of the frame a single shape covers


def _background(frame: torch.Tensor) -> torch.Tensor:
    """The border pixels' median colour: (3,)."""
    border = torch.cat([frame[:, 0, :], frame[:, -1, :], frame[:, :, 0], frame[:, :, -1]], dim=1)
    return border.median(dim=1).values


def foreground(video: torch.Tensor) -> torch.Tensor:
    """Soft foreground mask (F, H, W) in [0, 1]: distance from the background colour."""
    bg = _background(video[0]).view(1, 3, 1, 1)
    dist = (video - bg).abs().amax(dim=1)
    return ((dist - 0.25) / 0.75).clamp(0, 1)


def _centroids(mask: torch.Tensor) -> torch.Tensor:
    f, h, w = mask.shape
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w)
    mass = mask.sum((1, 2)).clamp(min=1e-6)
    return torch.stack([(mask * ys).sum((1, 2)) / mass, (mask * xs).sum((1, 2)) / mass], dim=1)


def motion_direction(video: torch.Tensor) -> str | None:
    """left/right/up/down from the centroid's displacement; None when nothing moves."""
    mask = foreground(video)
    if float(mask.sum()) < 1:
        return None
    c = _centroids(mask)
    dy, dx = (c[-1] - c[0]).tolist()
    if max(abs(dy), abs(dx)) < 0.5:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _colour_score(video: torch.Tensor, mask: torch.Tensor, colour: str) -> float:
    weight = mask.unsqueeze(1)
    mean = (video * weight).sum((0, 2, 3)) / weight.sum((0, 2, 3)).clamp(min=1e-6)
    dists = {name: float((mean - torch.tensor(rgb)).pow(2).sum()) for name, rgb in COLOURS.items()}
    return 1.0 if min(dists, key=dists.get) == colour else 0.0


def _shape_score(mask: torch.Tensor, shape: str) -> float:
    fills = []
    for m in mask:
        hard = m > 0.5
        if int(hard.sum()) < 3:
            continue
        rows, cols = hard.any(1).nonzero(), hard.any(0).nonzero()
        box = (int(rows.max() - rows.min()) + 1) * (int(cols.max() - cols.min()) + 1)
        fills.append(float(m.sum()) / box)
    if not fills:
        return 0.0
    fill = sum(fills) / len(fills)
    return 1.0 if min(_FILL, key=lambda k: abs(_FILL[k] - fill)) == shape else 0.0


def alignment_one(video: torch.Tensor, attrs: Attributes) -> float:
    mask = foreground(video)
    if _object_presence(mask) == 0:
        return 0.0
    direction = 1.0 if motion_direction(video) == attrs.direction else 0.0
    return (_colour_score(video, mask, attrs.colour) + _shape_score(mask, attrs.shape) + direction) / 3


def _object_presence(mask: torch.Tensor) -> float:
    """1 when every frame shows one shape-sized blob; decays for empty frames or whole-frame noise."""
    frac = mask.mean((1, 2))
    lo, hi = _OBJECT_AREA
    score = torch.where(frac < lo, frac / lo, torch.where(frac > hi, (1 - frac) / (1 - hi), torch.ones_like(frac)))
    return float(score.clamp(0, 1).min())


def smoothness_one(video: torch.Tensor) -> float:
    """Constant-velocity motion of a present object scores 1 (second differences of its centroid)."""
    mask = foreground(video)
    presence = _object_presence(mask)
    if presence == 0:
        return 0.0
    c = _centroids(mask)
    if c.shape[0] < 3:
        return presence
    accel = (c[2:] - 2 * c[1:-1] + c[:-2]).norm(dim=1).mean()
    return presence * float(torch.exp(-accel / 1.5))


def flicker_one(video: torch.Tensor) -> float:
    """Background stability: 1 - mean frame-to-frame change of background pixels (normalised)."""
    bg = 1 - foreground(video)
    still = bg[1:] * bg[:-1]
    change = (video[1:] - video[:-1]).abs().mean(1)
    jitter = (change * still).sum() / still.sum().clamp(min=1e-6)
    return float((1 - jitter / 0.5).clamp(0, 1))


def sharpness_one(video: torch.Tensor) -> float:
    """Hard edges on flat regions: the strongest gradients (the outline) must be high while the typical
    gradient (interior and background) stays near zero, so blur and noise both score low."""
    gray = video.mean(1)
    grads = torch.cat([(gray[:, 1:, :] - gray[:, :-1, :]).abs().flatten(1),
                       (gray[:, :, 1:] - gray[:, :, :-1]).abs().flatten(1)], dim=1)
    edges = grads.topk(8, dim=1).values.mean()
    flat = grads.median(dim=1).values.mean()
    return float(((edges / 1.2).clamp(0, 1) * (1 - flat / 0.2).clamp(0, 1)))


def _batched(fn, videos: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    out = []
    for i, v in enumerate(videos.float().clamp(-1, 1)):
        if prompts is None:
            out.append(fn(v))
        else:
            attrs = parse_prompt(prompts[i])
            out.append(fn(v, attrs) if attrs else 0.0)
    return torch.tensor(out, dtype=torch.float32)


def alignment(videos: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    return _batched(alignment_one, videos, prompts)


def smoothness(videos: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    return _batched(smoothness_one, videos)


def flicker(videos: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    return _batched(flicker_one, videos)


def sharpness(videos: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    return _batched(sharpness_one, videos)


METRICS = {"alignment": alignment, "smoothness": smoothness, "flicker": flicker, "sharpness": sharpness}


def wrong_direction_rate(videos: torch.Tensor, prompts: list[str]) -> float:
    """How often a video moves opposite to its prompt's direction (the temporal-negatives check)."""
    from .world import OPPOSITE
    bad = 0
    for v, p in zip(videos, prompts):
        attrs = parse_prompt(p)
        bad += int(attrs is not None and motion_direction(v.float()) == OPPOSITE[attrs.direction])
    return bad / max(len(prompts), 1)


__all__ = ["METRICS", "alignment", "smoothness", "flicker", "sharpness", "motion_direction", "wrong_direction_rate",
           "DIRECTIONS"]
