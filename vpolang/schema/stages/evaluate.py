"""Evaluation: metrics over held-out prompts for a policy and the ones it is compared against (§9, §11)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..base import AnyReward, Count, Policy, PositiveInt
from ..entities import Guided, Nrg, PairsFile, PromptSource, VideoSource
from .common import StageBase


class Evaluate(StageBase, Guided):
    """Samples every policy on the same prompts and seeds; writes metrics.json with means and 95% CIs."""

    summary = "evaluation"
    positional = ("policy",)
    kind: Literal["evaluate"] = "evaluate"
    policy: Policy
    against: list[Policy] = Field(default_factory=list, description="policies compared on the same prompts")
    prompts: PromptSource
    metrics: list[AnyReward] = Field(min_length=1, description="rewards and built-in metrics")
    guidance: Nrg | None = Field(None, description="nrg(reward, weight): reward guidance for the policy")
    samples_per_prompt: PositiveInt = Field(1, le=1024)
    sample_steps: PositiveInt | None = Field(None, le=10_000)
    gsb: AnyReward | None = Field(None, description="pairwise judge for Good/Same/Bad vs each of `against`")
    human_pairs: PairsFile | None = Field(None, description="human pairs to rank the judges (MRR, Recall@k)")
    reversal_gap: VideoSource | None = Field(
        None, description="held-out clips on which each policy's `reversal_gap` metric is measured: the "
        "flow-matching error of a clip played backwards minus that of the clip, same noise and timestep "
        "(Flow-DPO's implicit reward of forward over reversed motion; higher is better), paired like the "
        "other metrics")
    save_samples: Count = Field(4, ge=0, le=100_000, description="sample videos kept per policy")
    ci_resamples: PositiveInt = Field(1000, le=1_000_000, description="bootstrap resamples for the 95% intervals")
