"""Tiny random models saved once per session, synthetic videos, and a clean reward cache per test."""
from __future__ import annotations

import math

import pytest
import torch

from runtime.rewards import registry, tiny


@pytest.fixture(autouse=True)
def _fresh_cache():
    registry.clear_cache()
    yield
    registry.clear_cache()


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Folders of tiny models in the layouts the rewards load."""
    root = tmp_path_factory.mktemp("tiny_models")
    return {
        "clip": tiny.tiny_clip(root / "clip"),
        "qwen2_vl": tiny.tiny_qwen_vl(root / "qwen2_vl"),
        "qwen2_5_vl": tiny.tiny_qwen_vl(root / "qwen2_5_vl", model_type="qwen2_5_vl"),
        "llava": tiny.tiny_llava(root / "llava"),
        "dinov2": tiny.tiny_dinov2(root / "dinov2"),
        "rm_va": tiny.tiny_reward_model(root / "rm_va", ["vq", "mq", "ta"]),
        "rm_vs": tiny.tiny_reward_model(root / "rm_vs", ["visual_quality", "temporal_consistency", "dynamic_degree",
                                                           "text_alignment", "factual_consistency"]),
    }


def square_video(frames: int = 8, size: int = 32, step: float = 1.0, side: int = 8, flicker: float = 0.0,
                 background: float = -0.6, start: int = 2) -> torch.Tensor:
    """(F, 3, size, size): a bright square moving right by `step` px per frame on a grey background; with
    `flicker`, the background brightness alternates by that much every frame."""
    video = torch.full((frames, 3, size, size), background)
    for t in range(frames):
        video[t] += flicker * (t % 2)
        x = int(round(start + step * t))
        y = (size - side) // 2
        video[t, :, y:y + side, x:x + side] = torch.tensor([0.9, 0.2, -0.1]).view(3, 1, 1)
    return video.clamp(-1, 1)


def noise_video(frames: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(frames, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def smooth_pattern_video(frames: int = 8, size: int = 32, speed: float = 0.3) -> torch.Tensor:
    """A sinusoidal pattern drifting at constant velocity: textured, sharp and smooth in time."""
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    out = [torch.sin((xs + speed * t) * 2 * math.pi / 8) * torch.cos(ys * 2 * math.pi / 11) for t in range(frames)]
    return torch.stack(out).unsqueeze(1).expand(-1, 3, -1, -1) * 0.8
