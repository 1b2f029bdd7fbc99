"""Reward-model training: multi-head Bradley-Terry on pairs, pointwise head on labels (VideoAlign, IPO)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..base import Backbone, Count, PositiveInt, fail
from ..entities import LabelsFile, PairsFile
from .common import StageBase, TrainStage


class RewardModel(StageBase):
    """Train a video reward model on a vision-language backbone; usable as a reward (`rm.vq`,
    `rm.overall`) and as a judge."""

    summary = "reward-model (critic) training"
    positional = ("backbone",)
    kind: Literal["reward_model"] = "reward_model"
    backbone: Backbone
    pairs: PairsFile | None = Field(None, description="pairwise human preferences")
    labels: LabelsFile | None = Field(None, description="pointwise human labels")
    loss: Literal["bradley_terry", "bt_ties"] = Field("bt_ties", description="ties count as half a win")
    dims: list[str] = Field(default_factory=lambda: ["overall"], min_length=1, description="reward heads")
    epochs: PositiveInt = Field(1, le=100_000)
    lr: float = Field(2e-5, gt=0, le=1)
    batch: PositiveInt = Field(32, le=1_000_000)
    lora_rank: int = Field(0, ge=0, le=4096)
    micro_batch: PositiveInt | None = TrainStage.model_fields["micro_batch"]
    zero_stage: Count | None = TrainStage.model_fields["zero_stage"]
    checkpoint_every: PositiveInt = Field(200, le=100_000_000)
    frames: PositiveInt = Field(8, le=10_000, description="frames of each video the reward model reads")

    @model_validator(mode="after")
    def _needs_data(self):
        if self.pairs is None and self.labels is None:
            raise fail("vpo_rule", "a reward model needs `pairs`, `labels`, or both", field="pairs")
        if len(set(self.dims)) != len(self.dims):
            raise fail("vpo_rule", "`dims` names a head twice", field="dims")
        return self
