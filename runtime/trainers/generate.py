"""On-policy candidates: n samples per prompt from a policy, ahead of the judge and the stage that uses them.

Data parallel: each rank samples a contiguous share of the prompts (each prompt's noise is seeded by
the prompt's position, so the videos do not depend on how many ranks there are), writes its share
beside the output, and rank 0 joins the shares into the artifact once every rank is done."""
from __future__ import annotations

import torch

from vpolang.atomic import atomic_path, publish_folder, staging_folder, staging_path

from runtime.context import JobContext
from runtime.data.sources import load_prompts
from runtime.distributed import barrier
from runtime.models.sampler import Guidance, sample_guided

from .common import policy_from_ref


def prompt_share(count: int, rank: int, world: int) -> range:
    """Contiguous, as even as possible: the first `count % world` ranks take one prompt more."""
    per, extra = divmod(count, world)
    start = rank * per + min(rank, extra)
    return range(start, start + per + (1 if rank < extra else 0))


def prompt_generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + index) % (2**63 - 1))


@torch.no_grad()
def run(ctx: JobContext) -> None:
    cfg = ctx.config
    policy = policy_from_ref(ctx, cfg.policy)
    prompts = load_prompts(cfg.prompts, ctx.recipe_dir)
    n = cfg.n
    guidance = Guidance.of(cfg)
    shape = policy.latent_shape(cfg.frames, *cfg.resolution)
    mine = prompt_share(len(prompts), ctx.rank, ctx.world_size)
    videos = []
    for done, i in enumerate(mine, start=1):
        text = policy.encode_prompts([prompts[i]] * n)
        noise = torch.randn((n, *shape), generator=prompt_generator(cfg.seed, i))
        latents = sample_guided(policy, text, noise.to(ctx.device), cfg.sample_steps, guidance).final
        videos.append(policy.decode(latents).cpu().half())
        if done % 16 == 0:
            ctx.metrics(done * ctx.world_size, prompts_done=done * ctx.world_size)
    final = ctx.output_path("videos")
    tmp = staging_path(final)  # every rank writes its share there
    if ctx.is_main:
        staging_folder(final)
    barrier(ctx.dist)
    part = tmp / f"part-{ctx.rank:05d}.pt"
    with atomic_path(part) as part_tmp:  # a share is read only once it is whole
        torch.save(torch.cat(videos) if videos else torch.empty(0, *shape), part_tmp)
    barrier(ctx.dist)
    if not ctx.is_main:
        return
    shares = [torch.load(tmp / f"part-{r:05d}.pt") for r in range(ctx.world_size)]
    owners = [i for i in range(len(prompts)) for _ in range(n)]
    torch.save({"prompts": prompts, "n": n, "videos": torch.cat([s for s in shares if s.numel()]), "owners": owners},
               tmp / "videos.pt")
    for r in range(ctx.world_size):
        (tmp / f"part-{r:05d}.pt").unlink()
    publish_folder(tmp, final)
    ctx.metrics(len(prompts), videos=len(owners))


run.distributed = True  # each rank samples its share of the prompts
