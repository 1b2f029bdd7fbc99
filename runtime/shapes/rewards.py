"""Exact rewards of the shapes world, computed from the pixels of (B, F, 3, H, W) videos in [-1, 1].

Each is in [0, 1], higher is better. They read the frames the way a person would: find the pixels that
differ from the background, check that they form one shape-sized blob, then check its colour, its
outline (against the renderer's own templates) and how it moves."""
from __future__ import annotations

import functools
import math

import torch

from .render import RADIUS, shape_mask
from .world import COLOURS, OPPOSITE, SHAPES, Attributes, parse_prompt

AREA_BAND = (0.5, 1.6)  # blob area, relative to the smallest / largest rendered shape, scoring 1
COMPACT_RADIUS = 1.6  # a shape's mass lies within this many radii of its centroid (corners: 1.3)
MIN_TRAVEL = 1.0  # px over the clip below which nothing is said to move
BLURS = (0.0, 0.6, 1.0)  # Gaussian sigmas (px) of the shape templates
ACCEL_FREE = 0.1  # the renderer's 1/8-pixel sampling alone jitters centroids by a few hundredths of a px
ACCEL_SCALE = 0.5  # px per frame^2 beyond ACCEL_FREE that costs a factor e
EDGE_SHARP = 0.75  # strongest-edge / contrast ratio scoring 1: rendered shapes give 0.77-0.99, a 3x3 blur 0.34


# ---- reading the frames
def background_colour(video: torch.Tensor) -> torch.Tensor:
    """The median colour of every frame's border pixels: (3,)."""
    border = torch.cat([video[:, :, 0, :], video[:, :, -1, :], video[:, :, :, 0], video[:, :, :, -1]], dim=2)
    return border.permute(1, 0, 2).reshape(3, -1).median(dim=1).values


def foreground(video: torch.Tensor) -> torch.Tensor:
    """Soft foreground mask (F, H, W) in [0, 1]: the largest channel distance from the background,
    linear from 0 at 0.2 to 1 at 1.8 (a saturated colour is 2 away from black or white), so an
    anti-aliased edge pixel weighs as much as it is covered and centroids move smoothly."""
    return _transfer((video - background_colour(video).view(1, 3, 1, 1)).abs().amax(dim=1))


def _transfer(dist: torch.Tensor) -> torch.Tensor:
    return ((dist - 0.2) / 1.6).clamp(0, 1)


def centroids(mask: torch.Tensor) -> torch.Tensor:
    """(F, 2) mass centroids (y, x) in pixel-centre coordinates (pixel i is at i + 0.5)."""
    _, h, w = mask.shape
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1) + 0.5
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w) + 0.5
    mass = mask.sum((1, 2)).clamp(min=1e-6)
    return torch.stack([(mask * ys).sum((1, 2)) / mass, (mask * xs).sum((1, 2)) / mass], dim=1)


def _band(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """1 inside [lo, hi], falling linearly to 0 at 0 and at 2 hi."""
    return torch.where(x < lo, x / lo, torch.where(x > hi, (2 - x / hi).clamp(min=0), torch.ones_like(x)))


@functools.lru_cache(maxsize=8)
def _template_areas(size: int) -> tuple[float, float]:
    areas = [float(_mask_of_coverage(shape_mask(s, size, size / 2, size / 2)).sum()) for s in SHAPES]
    return min(areas), max(areas)


def presence(mask: torch.Tensor) -> float:
    """How clearly each frame shows one shape-sized, compact blob (mean over frames): 1 for a rendered
    shape, near 0 for empty frames, whole-frame noise or scattered specks."""
    f, h, w = mask.shape
    smallest, largest = _template_areas(h)
    area = mask.sum((1, 2))
    size_score = _band(area, AREA_BAND[0] * smallest, AREA_BAND[1] * largest)
    c = centroids(mask)
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1) + 0.5
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w) + 0.5
    dist = ((ys - c[:, 0].view(f, 1, 1)) ** 2 + (xs - c[:, 1].view(f, 1, 1)) ** 2).sqrt()
    near = (mask * (dist <= COMPACT_RADIUS * RADIUS * h)).sum((1, 2)) / area.clamp(min=1e-6)
    compact = ((near - 0.5) / 0.45).clamp(0, 1)
    return float((size_score * compact).mean())


def velocity(mask: torch.Tensor) -> torch.Tensor:
    """(dy, dx) px per frame of the centroid, a least-squares line through all frames."""
    c = centroids(mask)
    t = torch.arange(c.shape[0], dtype=torch.float32)
    t = (t - t.mean()).unsqueeze(1)
    return (t * (c - c.mean(0))).sum(0) / t.pow(2).sum().clamp(min=1e-6)


def motion_direction(video: torch.Tensor) -> str | None:
    """left / right / up / down from the centroid's motion; None when nothing moves."""
    mask = foreground(video.float())
    if float(mask.sum()) < 1 or video.shape[0] < 2:
        return None
    dy, dx = (velocity(mask) * (video.shape[0] - 1)).tolist()
    if max(abs(dy), abs(dx)) < MIN_TRAVEL:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def colour_of(video: torch.Tensor, mask: torch.Tensor) -> str:
    """The palette colour nearest the foreground's mean colour."""
    weight = mask.unsqueeze(1)
    mean = (video * weight).sum((0, 2, 3)) / weight.sum((0, 2, 3)).clamp(min=1e-6)
    return min(COLOURS, key=lambda name: float((mean - torch.tensor(COLOURS[name])).pow(2).sum()))


def shape_of(mask: torch.Tensor) -> str | None:
    """The shape whose template, rendered on each frame's blob and read through the same foreground
    transfer, overlaps it best (soft IoU; best over a few blur levels since a generated video's outline
    may be soft; summed over the frames that show something). None without a visible blob."""
    _, size, _ = mask.shape
    mask = mask[mask.sum((1, 2)) >= 3]
    if mask.shape[0] == 0:
        return None
    c = centroids(mask)
    scores = []
    for shape in SHAPES:
        oy, ox = _centroid_offset(shape, size)
        coverage = shape_mask(shape, size, c[:, 0] - oy, c[:, 1] - ox)
        templates = torch.stack([_mask_of_coverage(_gaussian_blur(coverage, sigma)) for sigma in BLURS], 1)
        inter = torch.minimum(mask.unsqueeze(1), templates).sum((2, 3))
        union = torch.maximum(mask.unsqueeze(1), templates).sum((2, 3)).clamp(min=1e-6)
        scores.append(float((inter / union).amax(1).sum()))
    return SHAPES[max(range(len(SHAPES)), key=scores.__getitem__)]


def _mask_of_coverage(coverage: torch.Tensor) -> torch.Tensor:
    """What `foreground` reads from a full-contrast shape (every palette colour is 2 from its background)."""
    return _transfer(2 * coverage)


@functools.lru_cache(maxsize=32)
def _centroid_offset(shape: str, size: int) -> tuple[float, float]:
    """Centroid minus box centre of a rendered shape (the triangle's centroid sits lower)."""
    probe = _mask_of_coverage(shape_mask(shape, size, size / 2, size / 2))
    oy, ox = (centroids(probe.unsqueeze(0))[0] - size / 2).tolist()
    return oy, ox


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, H, W) images, zero padding."""
    if sigma == 0:
        return images
    x = torch.arange(-3, 4, dtype=torch.float32)
    kernel = torch.exp(-x.pow(2) / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).view(1, 1, 1, 7)
    out = torch.nn.functional.conv2d(images.unsqueeze(1), kernel, padding=(0, 3))
    return torch.nn.functional.conv2d(out, kernel.transpose(2, 3), padding=(3, 0))[:, 0]


# ---- one video
def alignment_one(video: torch.Tensor, attrs: Attributes) -> float:
    """Presence times the fraction of {colour, shape, direction} recovered as the prompt says."""
    mask = foreground(video)
    present = presence(mask)
    if present == 0:
        return 0.0
    hits = [colour_of(video, mask) == attrs.colour, shape_of(mask) == attrs.shape,
            motion_direction(video) == attrs.direction]
    return present * sum(hits) / 3


def smoothness_one(video: torch.Tensor) -> float:
    """Constant-velocity motion of a present shape scores 1: presence times
    exp(-(mean centroid acceleration - ACCEL_FREE) / ACCEL_SCALE), in px per frame^2."""
    mask = foreground(video)
    present = presence(mask)
    if present == 0 or video.shape[0] < 3:
        return present
    c = centroids(mask)
    accel = float((c[2:] - 2 * c[1:-1] + c[:-2]).norm(dim=1).mean())
    return present * math.exp(-max(0.0, accel - ACCEL_FREE) / ACCEL_SCALE)


def flicker_one(video: torch.Tensor) -> float:
    """Background stability: 1 - the mean frame-to-frame change of pixels that are background in both
    frames, relative to 0.5 (a quarter of the value range)."""
    if video.shape[0] < 2:
        return 1.0
    still = (1 - foreground(video))
    still = still[1:] * still[:-1]
    change = (video[1:] - video[:-1]).abs().mean(1)
    jitter = (change * still).sum() / still.sum().clamp(min=1e-6)
    return float((1 - jitter / 0.5).clamp(0, 1))


def sharpness_one(video: torch.Tensor) -> float:
    """Crisp outlines on flat regions. The strongest gradients (the outline; largest channel) relative
    to the shape's contrast with the background (its most distinct pixels, which blur leaves alone)
    must be high, while the typical gradient (interior, background) stays near zero: blur lowers the
    first, noise raises the second."""
    grad_y = (video[:, :, 1:, :] - video[:, :, :-1, :]).abs().amax(1).flatten(1)
    grad_x = (video[:, :, :, 1:] - video[:, :, :, :-1]).abs().amax(1).flatten(1)
    grads = torch.cat([grad_y, grad_x], dim=1)
    dist = (video - background_colour(video).view(1, 3, 1, 1)).abs().amax(1).flatten(1)
    contrast = float(dist.topk(4, dim=1).values.mean())
    if contrast < 0.25:
        return 0.0
    edges = float(grads.topk(8, dim=1).values.mean()) / contrast
    flat = float(grads.median(dim=1).values.mean())
    return float(min(1.0, edges / EDGE_SHARP) * max(0.0, 1 - flat / 0.2))


# ---- batches
def _per_video(fn, videos: torch.Tensor) -> torch.Tensor:
    return torch.tensor([fn(v) for v in videos.detach().float().cpu().clamp(-1, 1)], dtype=torch.float32)


def alignment(videos: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """(B,) alignment with each prompt (0 for a prompt outside the shapes world)."""
    out = []
    for video, prompt in zip(videos.detach().float().cpu().clamp(-1, 1), prompts):
        attrs = parse_prompt(prompt)
        out.append(alignment_one(video, attrs) if attrs is not None else 0.0)
    return torch.tensor(out, dtype=torch.float32)


def smoothness(videos: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    return _per_video(smoothness_one, videos)


def flicker(videos: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    return _per_video(flicker_one, videos)


def sharpness(videos: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    return _per_video(sharpness_one, videos)


METRICS = {"alignment": alignment, "smoothness": smoothness, "flicker": flicker, "sharpness": sharpness}


def wrong_direction_rate(videos: torch.Tensor, prompts: list[str]) -> float:
    """The fraction of videos moving opposite to their prompt's direction (the temporal-negatives check)."""
    wrong = 0
    for video, prompt in zip(videos.detach().float().cpu(), prompts):
        attrs = parse_prompt(prompt)
        wrong += int(attrs is not None and motion_direction(video) == OPPOSITE[attrs.direction])
    return wrong / max(len(prompts), 1)
