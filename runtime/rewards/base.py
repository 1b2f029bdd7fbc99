"""The reward protocol shared by GRPO, pair judges and evaluation.

A reward scores a batch of videos (B, F, 3, H, W) in [-1, 1] with their prompts and returns a dict
head -> float32 tensor (B,) on the CPU. A scalar reward has one head; a multi-head reward returns every
head plus `overall`, their sum. Rewards declare where they want to run and roughly how much accelerator
memory they take, so several light ones can share a GPU (`concurrent.py`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch

from runtime.errors import JobError

OVERALL = "overall"


@dataclass(frozen=True)
class DeviceNeeds:
    """Scheduling facts: `device` is where the reward runs best ("cpu": OpenCV / tiny arithmetic that
    stays on the CPU even when asked to move), `memory_gib` its approximate accelerator memory at
    `max_batch`, and `max_batch` the most videos per forward (None: no limit)."""

    device: Literal["cpu", "gpu"] = "cpu"
    memory_gib: float = 0.0
    max_batch: int | None = None


class Reward(ABC):
    """Subclasses set `name`, `heads` and `needs`, and implement `score` (videos on `self.device`)."""

    name: str
    heads: tuple[str, ...]
    needs: DeviceNeeds = DeviceNeeds()
    # False for heads that are logits (reward models): BPGO squashes them before comparing with a prior
    bounded: bool = True
    device: torch.device = torch.device("cpu")

    @abstractmethod
    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Raw scores per head, (B,) each; keeps gradients where the reward is differentiable."""

    @property
    def multi_head(self) -> bool:
        return len(self.heads) > 1

    def to(self, device: str | torch.device) -> "Reward":
        """Moves the reward's weights; CPU-only rewards stay where they are."""
        if self.needs.device == "gpu":
            self.device = torch.device(device)
            self._move(self.device)
        return self

    def _move(self, device: torch.device) -> None:
        """Model-based rewards move their modules here."""

    @torch.no_grad()
    def __call__(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        check_batch(self.name, videos, prompts)
        step = self.needs.max_batch or len(prompts)
        parts = [self._score_chunk(videos[i:i + step], list(prompts[i:i + step]))
                 for i in range(0, len(prompts), step)]
        return {head: torch.cat([p[head] for p in parts]) for head in parts[0]}

    def _score_chunk(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        raw = self.score(videos.to(self.device, torch.float32), prompts)
        missing = set(self.heads) - set(raw)
        if missing:
            raise RuntimeError(f"reward `{self.name}` returned no scores for heads {sorted(missing)}")
        out = {h: raw[h].detach().float().reshape(-1).cpu() for h in self.heads}
        for head, value in out.items():
            if value.shape[0] != len(prompts):
                raise RuntimeError(f"reward `{self.name}` head `{head}` gave {value.shape[0]} scores for "
                                   f"{len(prompts)} videos")
        if self.multi_head:
            out[OVERALL] = torch.stack([out[h] for h in self.heads]).sum(0)
        return out


def check_batch(name: str, videos: torch.Tensor, prompts: list[str]) -> None:
    """Rewards take (B, F, 3, H, W) pixels with one prompt per video."""
    if videos.dim() != 5 or videos.shape[2] != 3:
        raise JobError(f"reward `{name}` takes videos shaped (B, F, 3, H, W); got {tuple(videos.shape)}")
    if videos.shape[0] != len(prompts):
        raise JobError(f"reward `{name}` got {videos.shape[0]} videos but {len(prompts)} prompts")
    if videos.shape[0] == 0:
        raise JobError(f"reward `{name}` got an empty batch")


def select_head(scores: dict[str, torch.Tensor], head: str | None, name: str) -> torch.Tensor:
    """One (B,) tensor: the named head; with no head, a scalar reward's only head or `overall`."""
    if head is None:
        if OVERALL in scores:
            return scores[OVERALL]
        if len(scores) == 1:
            return next(iter(scores.values()))
        first = next(iter(scores))
        raise JobError(f"reward `{name}` has several heads ({', '.join(scores)}); name one, e.g. `{name}.{first}`")
    if head not in scores:
        raise JobError(f"reward `{name}` has no head `{head}`; it has {', '.join(scores)}")
    return scores[head]
