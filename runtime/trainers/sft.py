"""SFT: the flow-matching loss on captioned videos, optionally reweighted by a reward (TeleBoost Stage I)."""
from __future__ import annotations

import torch

from runtime.algorithms import flow
from runtime.context import JobContext
from runtime.data.sources import load_videos
from runtime.rewards.registry import score_reward

from .common import (Loop, batch_indices, clip_and_step, encode_cached, load_policy, optimizer_for, save_policy,
                     step_generator, total_steps)
from .parallel import mean_over_ranks, share


def sample_weights(cfg: dict, ctx: JobContext, videos: torch.Tensor, prompts: list[str]) -> torch.Tensor | None:
    """w = exp(-+(r - mean r) / T) normalised to mean 1; `low` favours samples the reward scores low."""
    if cfg.get("weight") is None:
        return None
    r = score_reward(cfg["weight"], videos, prompts, ctx)
    sign = -1.0 if cfg["weight_towards"] == "low" else 1.0
    w = torch.exp(sign * (r - r.mean()) / cfg["weight_temperature"])
    return w / w.mean()


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    ctx.seed_everything()
    policy = load_policy(ctx)
    prompts, videos = load_videos(cfg["data"], ctx.recipe_dir, cfg["frames"], cfg["resolution"])
    latents = torch.cat([policy.encode_video(videos[i:i + 32].to(ctx.device)) for i in range(0, len(videos), 32)])
    weights = sample_weights(cfg, ctx, videos, prompts)
    optimizer = optimizer_for(policy.trainable_parameters(), cfg)
    steps = total_steps(cfg, len(prompts))
    text_cache: dict = {}
    shift = policy.spec.get("shift", 1.0)
    policy.train()

    def step(i: int) -> dict[str, float]:
        idx = batch_indices(len(prompts), cfg["batch"], i, cfg["seed"])
        gen = step_generator(cfg["seed"], i)
        # the whole global batch's noise is drawn on every rank, so each rank's rows get what they would
        # get in one process
        eps = torch.randn((len(idx), *latents.shape[1:]), generator=gen)
        s = flow.sample_sigmas(len(idx), gen, shift)
        mine = share(ctx, len(idx))
        idx, eps, s = idx[mine], eps[mine].to(latents.device), s[mine].to(latents.device)
        x0 = latents[idx.to(latents.device)]
        text = encode_cached(policy, [prompts[j] for j in idx], text_cache)
        err = flow.flow_matching_error(policy.velocity(flow.noised(x0, eps, s), s, text), x0, eps)
        loss = (err * weights[idx].to(err.device)).mean() if weights is not None else err.mean()
        loss.backward()
        grad_norm = clip_and_step(policy, optimizer, cfg)
        return {"loss": mean_over_ranks(float(loss)), "grad_norm": grad_norm}

    finished = Loop(ctx, policy, optimizer, steps).run(step)
    if finished:
        save_policy(ctx, policy)


run.distributed = True  # data parallel: see parallel.py
