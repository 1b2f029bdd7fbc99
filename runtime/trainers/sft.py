"""SFT: the flow-matching loss on captioned videos, optionally reweighted by a reward (TeleBoost Stage I)."""
from __future__ import annotations

import torch

from runtime.context import JobContext
from runtime.data.sources import load_videos
from runtime.rewards.registry import score_reward

from .common import Loop, load_policy, policy_updater, save_policy, total_steps, weighted_flow_matching_step


def sample_weights(cfg: dict, ctx: JobContext, videos: torch.Tensor, prompts: list[str]) -> torch.Tensor | None:
    """w = exp(-+(r - mean r) / T) normalised to mean 1; `low` favours samples the reward scores low."""
    if cfg.weight is None:
        return None
    r = score_reward(cfg.weight, videos, prompts, ctx)
    sign = -1.0 if cfg.weight_towards == "low" else 1.0
    w = torch.exp(sign * (r - r.mean()) / cfg.weight_temperature)
    return w / w.mean()


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    ctx.seed_everything()
    policy = load_policy(ctx)
    ctx.activity("loading videos")
    prompts, videos = load_videos(cfg.data, ctx.recipe_dir, cfg.frames, cfg.resolution,
                                  ctx.stop_event.is_set)
    latents = []
    for i in range(0, len(videos), 32):
        ctx.activity("encoding videos", i, len(videos))
        latents.append(policy.encode_video(videos[i:i + 32].to(ctx.device)))
    latents = torch.cat(latents)
    ctx.activity("training")
    weights = sample_weights(cfg, ctx, videos, prompts)
    updater = policy_updater(ctx, policy)
    steps = total_steps(cfg, len(prompts))
    cache: dict = {}
    policy.train()

    def step(i: int) -> dict[str, float]:
        loss, _ = weighted_flow_matching_step(ctx, policy, updater, latents, prompts, weights, i, cache)
        return {"loss": loss, "grad_norm": updater.step()}

    finished = Loop(ctx, policy, updater, steps).run(step)
    if finished:
        save_policy(ctx, policy, updater)


run.distributed = True  # data parallel: see parallel.py
