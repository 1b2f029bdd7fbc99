"""On-policy candidates: n samples per prompt from a policy, ahead of the judge and the stage that uses them."""
from __future__ import annotations

import os
import shutil

import torch

from runtime.context import JobContext
from runtime.data.sources import load_prompts
from runtime.models.sampler import sample

from .common import policy_from_ref


@torch.no_grad()
def run(ctx: JobContext) -> None:
    cfg = ctx.config
    policy = policy_from_ref(ctx, cfg["policy"])
    prompts = load_prompts(cfg["prompts"], ctx.recipe_dir)
    n = cfg["n"]
    shape = policy.latent_shape(cfg["frames"], *cfg["resolution"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    videos, owners = [], []
    for i, prompt in enumerate(prompts):
        text = policy.encode_prompts([prompt] * n)
        latents = sample(policy, text, torch.randn((n, *shape), generator=gen).to(ctx.device), cfg["sample_steps"]).final
        videos.append(policy.decode(latents).cpu().half())
        owners.extend([i] * n)
        if (i + 1) % 16 == 0:
            ctx.metrics(i + 1, prompts_done=i + 1)
    final = ctx.output_path("videos")
    tmp = final.with_name(".videos.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({"prompts": prompts, "n": n, "videos": torch.cat(videos), "owners": owners}, tmp / "videos.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    ctx.metrics(len(prompts), videos=len(owners))
