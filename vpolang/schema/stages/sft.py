"""Supervised fine-tuning: the flow-matching loss on captioned videos, optionally reward-weighted."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import Policy, ScalarReward
from ..entities import VideoSource
from .common import TrainStage


class Sft(TrainStage):
    """Flow-matching fine-tuning. With `weight`, each sample's loss is scaled by
    w = exp(-/+ (r - mean r) / weight_temperature), normalised to mean 1: `weight_towards = low`
    emphasises samples the reward scores low (TeleBoost: structurally unstable ones)."""

    summary = "supervised fine-tuning (flow matching)"
    positional = ("policy",)
    kind: Literal["sft"] = "sft"
    policy: Policy = Field(description="the model or stage to start from")
    data: VideoSource = Field(description="captioned videos")
    weight: ScalarReward | None = Field(None, description="reward that reweights each sample's loss")
    weight_towards: Literal["low", "high"] = Field("low", description="which samples the weight favours")
    weight_temperature: float = Field(1.0, gt=0)
