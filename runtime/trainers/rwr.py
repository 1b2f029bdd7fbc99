"""Flow-RWR: flow matching with per-video weights from a reward (ALGORITHMS.md §9; VideoAlign).

The data are fixed before training (on-policy candidates sampled ahead by a generate job, or captioned
videos), so each video's reward and weight w = exp((r - max r) / tau), normalised to mean 1 over the
whole set, are computed once; a step is the weighted flow-matching loss on a batch."""
from __future__ import annotations

import torch

from runtime.algorithms.rwr import rwr_weights
from runtime.context import JobContext
from runtime.data.sources import load_videos
from runtime.rewards.registry import score_reward

from .common import Loop, load_policy, policy_updater, save_policy, total_steps, weighted_flow_matching_step
from .parallel import mean_over_ranks

SCORE_CHUNK = 64  # videos per reward call: bounds the reward's activation memory


def training_videos(ctx: JobContext) -> tuple[list[str], torch.Tensor]:
    cfg = ctx.config
    data = cfg.data
    if data.kind == "on_policy":  # lowered: the generate job's videos, in input slot `data.input`
        sampled = torch.load(ctx.input_path(data.input) / "videos.pt", map_location="cpu")
        return [sampled["prompts"][i] for i in sampled["owners"]], sampled["videos"].float()
    prompts, videos = load_videos(data, ctx.recipe_dir, cfg.frames, cfg.resolution,
                                  ctx.stop_event.is_set)
    return list(prompts), videos


def reward_of(ctx: JobContext, videos: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    parts = [score_reward(ctx.config.reward, videos[i:i + SCORE_CHUNK], prompts[i:i + SCORE_CHUNK], ctx).float().cpu()
             for i in range(0, len(prompts), SCORE_CHUNK)]
    return torch.cat(parts)


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    ctx.seed_everything()
    policy = load_policy(ctx)
    prompts, videos = training_videos(ctx)
    rewards = reward_of(ctx, videos, prompts)
    weights = rwr_weights(rewards, cfg.tau, cfg.weight_clip)
    ess = float(weights.sum() ** 2 / weights.pow(2).sum())  # effective sample size: how peaked the weights are
    ctx.log(f"rewards mean {float(rewards.mean()):.4f} (min {float(rewards.min()):.4f}, max {float(rewards.max()):.4f}); "
            f"weights max {float(weights.max()):.2f}, effective sample size {ess:.1f} of {len(weights)}")
    latents = torch.cat([policy.encode_video(videos[i:i + 32].to(ctx.device)) for i in range(0, len(videos), 32)])
    del videos
    updater = policy_updater(ctx, policy)
    steps = total_steps(cfg, len(prompts))
    cache: dict = {}
    policy.train()

    def step(i: int) -> dict[str, float]:
        loss, idx = weighted_flow_matching_step(ctx, policy, updater, latents, prompts, weights, i, cache)
        return {"loss": loss, "reward": mean_over_ranks(float(rewards[idx].mean())),
                "grad_norm": updater.step()}

    ctx.metrics(0, reward_mean=float(rewards.mean()), weight_max=float(weights.max()), effective_samples=ess)
    if Loop(ctx, policy, updater, steps).run(step):
        save_policy(ctx, policy, updater)


run.distributed = True  # data parallel: see parallel.py
