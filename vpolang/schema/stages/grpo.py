"""GRPO for flow models (ALGORITHMS.md §1) with the ViPO, BPGO and self-paced modifiers (§2-4)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..base import Count, Policy, PositiveInt, Probability, ScalarReward, Schema, fail
from ..entities import GateExpr, NegativePrompt, PromptSource, RewardExpr
from .common import TrainStage


class Vipo(Schema):
    """ViPO: per-position advantage maps from a frozen backbone's patch features (§2)."""

    summary = "structured credit: dense advantage maps"
    backbone: str = Field("dinov2-small", description="frozen feature backbone (transformers DINOv2 class)")
    # `pixel` was accepted and ignored: the policy's log-ratio, hence the map, lives on latent positions
    level: Literal["latent"] = Field("latent", description="where the map is applied: the latent grid the "
                                     "policy's per-position log-ratio is taken over")
    sigma: float = Field(1.0, gt=0, description="gaussian smoothing of the map (patch cells)")
    clip_range: float = Field(2e-4, gt=0, description="PPO clip range for per-position ratios")


class Bpgo(Schema):
    """BPGO: trust allocation against a per-prompt prior reward (§3)."""

    summary = "Bayesian prior-guided trust allocation"
    prior: Policy | Literal["running_mean"] = Field(
        "running_mean", description="model/stage whose rewards on the same prompts are the prior")
    form: Literal["teleboost", "paper"] = "teleboost"
    alpha: float = Field(1.0, ge=0)
    a: float = Field(50.0, gt=0, description="CRT slope (teleboost form)")
    tau: float = Field(5.0, gt=0, description="CRT temperature (teleboost form)")
    k: float = Field(10.0, gt=0, description="RAS sharpness (paper form)")
    lam: float = Field(1.0, ge=0, description="CRT slope (paper form)")
    zeta: float = Field(0.1, ge=0, description="weight of the CRT GRPO term (paper form)")


class SelfPaced(Schema):
    """Self-paced curriculum over reward components ordered visual -> temporal -> semantic (§4)."""

    summary = "soft per-group curriculum over reward components"
    phases: list[ScalarReward] = Field(min_length=2, description="reward components in curriculum order")
    tau: float = Field(0.75, description="mean reward at which a component counts as learnt")
    beta: float = Field(0.3, ge=0, description="weight of the sparsity difference")
    saturate_below: Probability = Field(
        0.0, description="a component whose in-group reward std is below this hands its weight on")


class Window(Schema):
    """Windowed training (MixGRPO, Flow-GRPO-Fast): ODE steps outside a window of SDE steps."""

    summary = "a sliding window of SDE steps; ODE elsewhere; only the window is trained"
    size: PositiveInt = Field(2, le=1024, description="consecutive SDE steps per rollout, every one trained")
    schedule: Literal["slide", "random"] = Field(
        "slide", description="slide: from the first step, moving `stride` later every `shift_every` steps "
        "(MixGRPO); random: a uniform start per step (Flow-GRPO-Fast)")
    shift_every: PositiveInt = Field(25, le=1_000_000, description="optimiser steps between moves (slide)")
    stride: PositiveInt = Field(1, le=1024, description="sampling steps the window moves by (slide)")


class Grpo(TrainStage, NegativePrompt):
    """Group-relative policy optimisation over SDE rollouts with stored log-probs."""

    summary = "group-relative RL (Flow-GRPO)"
    positional = ("policy",)
    modifiers = TrainStage.modifiers + ("vipo", "bpgo", "self_paced", "window")
    kind: Literal["grpo"] = "grpo"
    policy: Policy
    prompts: PromptSource
    reward: RewardExpr = Field(description="scalar reward, weighted sum, or joint([...])")
    gate: GateExpr | None = Field(None, description="samples violating it get zero advantage or are dropped")
    gate_action: Literal["zero", "drop"] = "zero"
    group_size: Count = Field(8, ge=2, le=4096, description="videos per prompt (G)")
    batch: PositiveInt = Field(8, le=1_000_000, description="prompts per step")
    kl: float = Field(0.0, ge=0, le=1, description="weight of the KL to the reference (beta_kl)")
    warmup: Count | None = Field(None, ge=0, le=100_000_000, description="linear warm-up steps; unset: a "
                                 "quarter of the steps (a sparse reward's batch gradient is mostly noise and "
                                 "Adam's first steps are full-size whatever it is; 0: none)")
    sample_steps: PositiveInt | None = Field(None, le=10_000, description="sampler steps per rollout (T); model default if unset")
    train_fraction: float = Field(0.6, gt=0, le=1, description="fraction of the T steps trained per sample")
    objective: Literal["grpo", "nft"] = Field(
        "grpo", description="grpo: the clipped ratio loss on SDE steps' log-probs; nft (DiffusionNFT): "
        "flow matching on the rollouts' clean samples towards an implicit positive policy (no log-probs)")
    nft_beta: float = Field(1.0, gt=0, le=10, description="DiffusionNFT's beta: how far the implicit "
                            "positive and negative policies lie from the sampling policy")
    noise: Literal["flow_grpo", "dance", "cps", "ode"] = Field(
        "flow_grpo", description="rollout SDE: flow_grpo g = a sqrt(s/(1-s)), dance g = eta, cps the "
        "coefficient-preserving step (std = s' sin(eta pi/2)); ode (nft only) deterministic")
    noise_level: float | None = Field(None, ge=0, description="a (flow_grpo, 0.7), eta (dance, 0.3) or eta in "
                                      "(0, 1] (cps, 0.8); 0 only with ode (the plan's value for it)")
    clip_range: float = Field(1e-4, gt=0, description="PPO ratio clip epsilon")
    guard: bool = Field(False, description="GRPO-Guard: RatioNorm (the ratio's bias removed, rescaled by the "
                        "step's std) and 1/|dt| step weights")
    kl_space: Literal["mean", "velocity"] = Field(
        "mean", description="KL to the reference on the transition mean (/ 2g^2) or on the velocity")
    reward_as: Literal["score", "win_rate"] = Field(
        "score", description="win_rate (Pref-GRPO): each rollout's reward is its win rate within the group "
        "(a pairwise judge's verdicts, or score comparisons)")
    adv_ddof: Literal[0, 1] = 0
    adv_eps: float = Field(1e-4, gt=0)
    adv_clip: float = Field(5.0, gt=0)
    global_std: bool = Field(False, description="normalise advantages by the batch std")
    shared_noise: bool = Field(False, description="one initial noise per group")
    best_of_n: PositiveInt | None = Field(None, le=4096, description="train on the k highest and k lowest advantages")
    guidance: float = Field(1.0, ge=1, description="classifier-free guidance scale of rollouts, their "
                            "log-probs and BPGO's prior samples (1: off)")
    updates_per_batch: PositiveInt = Field(1, le=1024, description="optimiser passes over each rollout batch")
    vipo: Vipo | None = None
    bpgo: Bpgo | None = None
    self_paced: SelfPaced | None = None
    window: Window | None = None

    @model_validator(mode="after")
    def _noise_level_positive(self):
        if self.noise_level == 0 and self.noise != "ode":  # ode lowers to 0: its rollouts have no noise
            raise fail("vpo_range", f"`noise_level` must be above 0 with noise = {self.noise}", field="noise_level")
        return self
