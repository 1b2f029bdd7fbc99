"""Diffusion-DPO / Flow-DPO with IPO regularisers, online pairs and decoupled backward (§6-7)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import Policy, PositiveInt
from ..entities import BetaSchedule, PairSource, Reference, VideoSource
from .common import TrainStage


class Dpo(TrainStage):
    """Preference optimisation with shared noise and timestep for winner and loser."""

    summary = "preference optimisation (Diffusion-DPO / Flow-DPO)"
    positional = ("policy",)
    kind: Literal["dpo"] = "dpo"
    policy: Policy
    pairs: PairSource = Field(description="pairs(file), synthetic(...), on_policy(...), online(...), or a sum")
    beta: BetaSchedule | None = Field(None, description="number or linear/cosine(a, b); default by prediction "
                                      "type: 5000 (epsilon), 500 (velocity)")
    backward: Literal["standard", "decoupled"] = Field(
        "standard", description="decoupled: one branch's activations alive at a time (same gradients)")
    reference: Reference = Field("frozen", description="frozen, or refresh(every = K)")
    nll_chosen: float = Field(0.0, ge=0, description="IPO lambda1: flow-matching loss on the winner")
    nll_real: float = Field(0.0, ge=0, description="IPO lambda2: flow-matching loss on real videos")
    real: VideoSource | None = Field(None, description="real videos for nll_real")
    sample_steps: PositiveInt | None = Field(None, le=10_000, description="sampler steps for online pairs")
    mixed_resolution: bool = Field(False, description="alternate low/high resolution batches (TeleBoost §4.3)")
