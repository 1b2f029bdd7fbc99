"""Tiny models of each family, saved once per session in the diffusers pipeline layout."""
from __future__ import annotations

import pytest
import torch

from runtime.models import tiny
from runtime.models.families import from_pretrained

# Pixel sizes that fit each tiny model: Wan's VAE wants 1 + 4k frames, CogVideoX's 1 + 8k; both 8x spatial.
VIDEO = {"wan": (5, 32, 32), "cogvideox": (9, 32, 32)}
PROMPTS = ["a red cat running on the beach", "a dog"]


@pytest.fixture(scope="session")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tiny_models")
    return {"wan": tiny.save_tiny_wan(root / "wan"),
            "wan22": tiny.save_tiny_wan(root / "wan22", experts=2),
            "cogvideox": tiny.save_tiny_cogvideox(root / "cogvideox"),
            "cogvideox_rope": tiny.save_tiny_cogvideox(root / "cogvideox_rope", rotary=True)}


@pytest.fixture(params=["wan", "wan22", "cogvideox", "cogvideox_rope"])
def any_policy(request, folders):
    return load(folders, request.param)


def load(folders: dict, name: str, dtype: torch.dtype = torch.float32):
    return from_pretrained(folders[name], dtype=dtype)


def video_shape(policy) -> tuple[int, int, int]:
    return VIDEO["cogvideox" if policy.family == "cogvideox" else "wan"]


def latents(policy, n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn((n, *policy.latent_shape(*video_shape(policy))), generator=torch.Generator().manual_seed(seed))
