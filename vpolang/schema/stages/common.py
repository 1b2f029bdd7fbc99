"""Fields every stage shares, and those every training stage shares. Each is defined once here."""
from __future__ import annotations

import warnings
from typing import Literal

from pydantic import Field

from ..base import Count, PositiveInt, Resolution, ScalarReward, Schema, Seconds
from ..entities import PromptSource


class StageBase(Schema):
    seed: Count = Field(0, ge=0, le=2**63 - 1, description="random seed of the job (data order, noise, init)")
    nodes: PositiveInt = Field(1, le=4096, description="nodes to run on (each with the cluster's GPUs per node)")
    time_limit: Seconds | None = Field(None, description="wall-clock limit; defaults to the cluster's")
    resolution: Resolution | None = Field(None, description="height x width, e.g. 480p; model default if unset")
    frames: PositiveInt | None = Field(None, le=10_000, description="frames per video; model default if unset")


class Validate(Schema):
    """In-training validation: every `every` steps (and after the last), the held-out `prompts` are
    sampled with the same noise each time (deterministic ODE sampling), scored by each of `metrics` and
    logged as `val/<metric>` beside the training reward. With `patience`, the stage stops once `monitor`
    has not improved by `min_delta` for that many validations; with `keep_best`, the weights of the best
    validation (not the last step's) are the stage's output."""

    summary = "held-out validation during training; early stopping; keep the best"
    every: PositiveInt = Field(le=100_000_000, description="steps between validations (one also runs after the last step)")
    prompts: PromptSource = Field(description="held-out prompts, sampled with fixed noise at every validation")
    metrics: list[ScalarReward] = Field(min_length=1, max_length=16, description="rewards scoring the samples; each "
                                        "is logged as val/<name>")
    sample_steps: PositiveInt | None = Field(None, le=10_000, description="sampler steps; model default if unset")
    monitor: ScalarReward | None = Field(None, description="the metric early stopping and keep_best follow (one of "
                                         "`metrics`); unset: the first")
    goal: Literal["max", "min"] = Field("max", description="whether a higher or a lower `monitor` is better")
    patience: PositiveInt | None = Field(None, le=1_000_000, description="stop after this many validations without "
                                         "improvement; unset: never stop early")
    min_delta: float = Field(0.0, ge=0, description="an improvement smaller than this counts as none")
    keep_best: bool = Field(False, description="the stage's output is the best validated weights, not the last")


# `with validate { ... }` is the recipe's word; as a field it shadows pydantic's deprecated
# BaseModel.validate classmethod, which nothing here calls (model_validate is the API).
warnings.filterwarnings("ignore", message='Field name "validate" in "', category=UserWarning)


class TrainStage(StageBase):
    modifiers = ("validate",)
    steps: PositiveInt | None = Field(None, le=100_000_000, description="optimiser steps; unset: `epochs` passes over the data")
    epochs: PositiveInt = Field(1, le=100_000, description="passes over the data when `steps` is unset")
    lr: float = Field(gt=0, le=1, description="peak learning rate (AdamW)")
    batch: PositiveInt = Field(8, le=1_000_000, description="global batch (videos, pairs or prompts per step)")
    warmup: Count = Field(0, ge=0, le=100_000_000, description="linear warm-up steps")
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0, description="max global gradient norm")
    lora_rank: Count = Field(0, ge=0, le=4096, description="0: full fine-tuning; else LoRA on attention projections")
    micro_batch: PositiveInt | None = Field(None, le=1_000_000, description="rows per forward/backward on each GPU (videos, "
                                            "pairs, rollouts); the rest of a GPU's share of the batch is "
                                            "gradient accumulation. Unset: the largest that fits, chosen "
                                            "by `vpo plan`; set it so a run reproduces across clusters")
    gradient_checkpointing: bool | None = Field(None, description="unset: on only when memory demands it")
    zero_stage: Count | None = Field(None, ge=0, le=3, description="DeepSpeed ZeRO stage (0-3); unset: 2 when the "
                                     "job spans several GPUs, else torch AdamW (fp32 master weights for bf16 models)")
    sequence_parallel: PositiveInt = Field(1, le=64, description="GPUs that split each video's tokens "
                                           "(Ulysses all-to-all over the attention heads): activations per GPU / k, "
                                           "one all-to-all before and after each attention; must divide the GPUs of "
                                           "the job and the model's attention heads")
    compile: bool = Field(False, description="torch.compile the transformer (its repeated blocks where the "
                          "model names them): on an H100, Wan2.1-1.3B steps 21% faster with 10 GiB less "
                          "activation memory, after a one-off compile of about a minute")
    checkpoint_every: PositiveInt = Field(50, le=100_000_000, description="steps between resumable checkpoints")
    ema: float | None = Field(None, gt=0, lt=1, description="EMA decay of the weights (unset: no EMA)")
    log_every: PositiveInt = Field(1, le=100_000_000, description="steps between metric records")
    validate: Validate | None = None
