"""GRPO for flow models with the ViPO, BPGO and self-paced modifiers, joint rewards and gates (§1-5).

The reward -> advantage composition lives in grpo_advantages.py (docs/algorithms.md §S2).

Each step: sample `group_size` SDE rollouts per prompt storing per-step log-probs, score them, turn
rewards into group-relative advantages, then recompute a random `train_fraction` of each rollout's
steps under the current weights and minimise the clipped ratio loss plus the KL to the reference."""
from __future__ import annotations

import math

import torch

from runtime.algorithms import vipo
from runtime.algorithms.ppo import clipped_policy_loss, per_position_logprob
from runtime.algorithms.sde import step_mean
from runtime.context import JobContext
from vpolang.plan import ExecutionBlock
from runtime.data.sources import load_prompts
from runtime.models.sampler import guided_velocity, sample
from runtime.models.sampler import initial_noise as draw_noise
from runtime.rewards.backbones import load_backbone

from .common import (Loop, batch_indices, encode_cached, load_policy, pin_reference, policy_updater, save_policy,
                     step_generator)
from . import grpo_nft
from . import grpo_options as opt
from .grpo_advantages import Priors, Scores, compute_advantages, prior_head_values, score_rollouts  # noqa: F401
from .parallel import mean_over_ranks, share



def vipo_maps(backbone, videos: torch.Tensor, latent_shape, sigma: float) -> torch.Tensor:
    maps = []
    for v in videos:
        tokens, grid = backbone(v)
        maps.append(vipo.advantage_map(tokens, grid, tuple(latent_shape[1:]), sigma))
    return torch.stack(maps)  # (B, T, H, W), broadcast over channels


def initial_noise(cfg: dict, n: int, latent: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """The starting noise of n rollouts (whole groups): one draw per group, repeated, with shared_noise
    (so a group's rewards differ only through the SDE's noise); else one per rollout."""
    return draw_noise(n, latent, gen, group=cfg["group_size"] if cfg["shared_noise"] else 1)


def run(ctx: JobContext) -> None:
    # GRPO's helpers (grpo_advantages, algorithms/bpgo) and their tests take the config's plain form: the
    # dump of the typed config, every field present with the schema's default (none is re-stated here)
    cfg = ctx.config.model_dump()
    ctx.seed_everything()
    policy = load_policy(ctx)
    prompts_pool = load_prompts(cfg["prompts"], ctx.recipe_dir)
    steps = cfg["steps"] or max(1, math.ceil(cfg["epochs"] * len(prompts_pool) / cfg["batch"]))
    g, T = cfg["group_size"], cfg["sample_steps"]
    cache: dict = {}
    priors = Priors(ctx, cfg["bpgo"], prior_head_values(cfg, ctx)) if cfg["bpgo"] else None
    backbone = load_backbone(cfg["vipo"]["backbone"], ctx.recipe_dir, policy.spec["family"]) if cfg["vipo"] else None
    clip_range = cfg["vipo"]["clip_range"] if cfg["vipo"] else cfg["clip_range"]
    latent = policy.latent_shape(cfg["frames"], *cfg["resolution"])

    def step(i: int) -> dict[str, float]:
        gen = step_generator(cfg["seed"], i)
        idx = batch_indices(len(prompts_pool), cfg["batch"], i, cfg["seed"])
        prompts = [prompts_pool[j] for j in idx for _ in range(g)]
        n = len(prompts)
        # every rank draws the whole batch's noise and samples its rows (the block's rank split: a
        # group may lie on several ranks)
        noise = initial_noise(cfg, n, latent, gen)
        mine = share(ctx, n)
        text = encode_cached(policy, prompts[mine], cache)
        local = mine.stop - mine.start
        policy.eval()
        ctx.activity("sampling rollouts", i, steps)
        uncond = encode_cached(policy, [cfg["negative_prompt"]] * local, cache) if cfg["guidance"] != 1.0 else None
        traj = sample(policy, text, noise[mine].to(ctx.device), T, cfg["noise"], cfg["noise_level"], gen,
                      cfg["guidance"], uncond, rows=(mine, n), sde_steps=opt.sde_steps(cfg, i, T),
                      prefix_group=opt.prefix_group(cfg, mine))
        videos = policy.decode(traj.final)
        ctx.activity("scoring rollouts", i, steps)
        scores = score_rollouts(cfg, videos, prompts[mine], ctx).gathered()
        advantage, keep, info = compute_advantages(cfg, scores, prompts, priors)
        dense = vipo_maps(backbone, videos, latent, cfg["vipo"]["sigma"]) if backbone else None
        if dense is not None:  # the maps' statistics over this rank's rollouts, averaged over ranks
            info.update({f"vipo/map_{k}": mean_over_ranks(v) for k, v in vipo.map_statistics(dense).items()})
        ctx.track_histogram(i + 1, "advantage", advantage)
        policy.train()
        ctx.activity("updating", i, steps)
        if cfg["objective"] == "nft":  # DiffusionNFT: flow matching on the clean samples (grpo_nft.py)
            info.update(grpo_nft.update(policy, updater, cfg, traj, text, advantage, keep, gen, mine, ctx.execution))
            return info
        for inner in range(cfg["updates_per_batch"]):
            info.update(update(policy, updater, cfg, traj, text, uncond, advantage, keep, dense, clip_range, gen,
                               mine, ctx.execution))
            if inner == 0:  # on-policy self-check (vpolang/health.py): the ratio is 1 here, nothing clips
                info["clip_frac_first"] = info["clip_frac"]
        return info

    if cfg["kl"] > 0:
        pin_reference(policy)  # the KL's reference is the starting weights, also after a resume
    updater = policy_updater(ctx, policy)
    # BPGO's priors are history (a running mean per prompt): checkpointed so a resume continues it
    if Loop(ctx, policy, updater, steps, state={"bpgo_priors": priors} if priors is not None else {}).run(step):
        save_policy(ctx, policy, updater)


run.distributed = True  # data parallel over rollouts (groups may span ranks): see parallel.py


def update(policy, updater, cfg, traj, text, uncond, advantage, keep, dense, clip_range, gen,
           mine: slice, block: ExecutionBlock) -> dict[str, float]:
    """Recompute a random fraction of each of this rank's rollouts' SDE steps and take one optimiser
    step. `advantage` and `keep` cover the global batch; `mine` are this rank's rows of it. The rollouts
    that drew the same timestep share a pass, in passes of at most the block's micro-batch (gradients
    accumulate until the step)."""
    T = len(traj.levels)
    trainable_steps = [k for k in range(T) if traj.levels[k] > 0]
    k_per_sample = opt.steps_per_sample(cfg, len(trainable_steps))
    n = advantage.shape[0]
    drawn = torch.stack([torch.tensor(trainable_steps)[torch.randperm(len(trainable_steps), generator=gen)]
                         for _ in range(n)])[:, :k_per_sample]
    order, mine_adv, keep_mine = drawn[mine], advantage[mine], keep[mine]
    world, micro = block.world_size // block.sequence_parallel, block.micro_batch  # data-parallel groups
    totals = {"loss": 0.0, "kl": 0.0, "clip_frac": 0.0}
    # under ZeRO-2/3 gradients are reduced inside each backward: every rank must run the same sequence
    # of backwards, so each runs as many passes per timestep as the busiest rank, zero-weight passes
    # where it has no rows (every rank holds the whole draw, so none needs to ask the others)
    uniform = updater.needs_uniform_backwards
    for j in range(k_per_sample):
        for k in (trainable_steps if uniform else order[:, j].unique().tolist()):
            hits = ((order[:, j] == k) & keep_mine.to(order.device)).nonzero().flatten()
            if uniform:
                per_rank = ((drawn[:, j] == k) & keep.to(drawn.device)).view(world, -1).sum(1)
                passes = int(((per_rank + micro - 1) // micro).max())
            else:
                passes = -(-hits.numel() // micro)
            for c in range(passes):
                rows = hits[c * micro:(c + 1) * micro]
                values = _update_pass(policy, updater, cfg, traj, text, uncond, mine_adv, dense, clip_range, k, rows,
                                      weight=rows.numel() * world / (n * k_per_sample))
                for name, value in values.items():
                    totals[name] += value
    totals = {k: mean_over_ranks(v) for k, v in totals.items()}
    totals["grad_norm"] = updater.step()  # every rank joins, with or without rows
    return totals


def _update_pass(policy, updater, cfg, traj, text, uncond, advantage, dense, clip_range, k: int, rows: torch.Tensor,
                 weight: float) -> dict[str, float]:
    """One forward/backward of timestep k on `rows` of this rank's rollouts, its loss scaled by `weight`
    (its share of the global batch's mean; the ranks' gradients are averaged, hence x world). No rows:
    a zero-weight pass on row 0, so that this rank joins the others' backward."""
    placeholder = rows.numel() == 0
    if placeholder:
        rows = torch.zeros(1, dtype=torch.long)
    s, s_next, level = float(traj.sigmas[k]), float(traj.sigmas[k + 1]), traj.levels[k]
    x, x_next = traj.states[k][rows], traj.states[k + 1][rows]
    sub_text = text.index(rows)
    sub_uncond = uncond.index(rows) if uncond is not None else None
    # the same guided velocity as the rollout, so the ratio compares like with like
    v = guided_velocity(policy, x, s, sub_text, sub_uncond, cfg["guidance"])
    mu, std = step_mean(traj.noise_kind, x, v, s, s_next, level)
    mu_old = traj.mus[k][rows].to(mu.device)
    a = advantage[rows].to(mu.device)
    if dense is not None:
        old = per_position_logprob(x_next, mu_old, std)
        new = per_position_logprob(x_next, mu, std)
        new, old = opt.log_ratio_terms(cfg, new, old, mu, mu_old, std)
        a_map = dense[rows].unsqueeze(1).to(mu.device) * a.view(-1, 1, 1, 1, 1)
        loss, clip_frac = clipped_policy_loss(new, old, a_map.expand_as(new), clip_range)
    else:
        z = (x_next - mu) / std
        logp = (-0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)).flatten(1).mean(1)
        logp, old = opt.log_ratio_terms(cfg, logp, traj.logps[rows, k].to(logp.device), mu, mu_old, std)
        loss, clip_frac = clipped_policy_loss(logp, old, a, clip_range)
    loss = loss * opt.policy_weight(cfg, s, s_next)
    kl = torch.zeros(())
    if cfg["kl"] > 0:
        with torch.no_grad(), policy.reference() as ref:
            v_ref = guided_velocity(policy, x, s, sub_text, sub_uncond, cfg["guidance"], ref)
            mu_ref, _ = step_mean(traj.noise_kind, x, v_ref, s, s_next, level)
        kl = opt.kl_term(cfg, traj.noise_kind, mu, mu_ref, v, v_ref, level, std).mean()
        loss = loss + cfg["kl"] * kl
    weight = 0.0 if placeholder else weight
    updater.backward(loss * weight)
    return {"loss": float(loss.detach()) * weight, "kl": float(kl.detach()) * weight,
            "clip_frac": float(clip_frac) * weight}
