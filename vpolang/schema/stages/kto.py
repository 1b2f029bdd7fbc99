"""Diffusion-KTO with pointwise labels (§8)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import Policy, PositiveInt
from ..entities import LabelSource, VideoSource
from .common import TrainStage


class Kto(TrainStage):
    """Kahneman-Tversky optimisation: desirable/undesirable videos against a batch reference point."""

    summary = "pointwise preference optimisation (Diffusion-KTO)"
    positional = ("policy",)
    kind: Literal["kto"] = "kto"
    policy: Policy
    labels: LabelSource = Field(description="labels(file) or on_policy(..., labels = true)")
    beta: float = Field(1000.0, gt=0)
    utility: Literal["sigmoid", "loss_averse"] = "sigmoid"
    lambda_desirable: float = Field(1.0, gt=0)
    lambda_undesirable: float = Field(1.0, gt=0)
    threshold: float | None = Field(None, description="numeric labels: the score from which a video is desirable")
    batch: PositiveInt = Field(128, le=1_000_000, description="global batch; large for a stable reference point")
    nll_real: float = Field(0.0, ge=0)
    real: VideoSource | None = None
