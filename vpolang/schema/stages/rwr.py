"""Flow-RWR: reward-weighted flow matching (§9)."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from ..base import Policy, ScalarReward
from ..entities import OnPolicy, ShapesVideos, Videos
from .common import TrainStage

RwrData = Annotated[Union[OnPolicy, Videos, ShapesVideos], Field(discriminator="kind")]


class Rwr(TrainStage):
    """Flow matching with per-sample weights exp((r - max r)/tau), normalised to mean 1."""

    summary = "reward-weighted regression (Flow-RWR)"
    positional = ("policy",)
    kind: Literal["rwr"] = "rwr"
    policy: Policy
    data: RwrData = Field(description="on_policy(...) samples or captioned videos")
    reward: ScalarReward
    tau: float = Field(1.0, gt=0)
    weight_clip: float | None = Field(None, gt=0, description="cap on the normalised weights")
