"""GRPO for flow models with the ViPO, BPGO and self-paced modifiers, joint rewards and gates (§1-5).

Each step: sample `group_size` SDE rollouts per prompt storing per-step log-probs, score them, turn
rewards into group-relative advantages, then recompute a random `train_fraction` of each rollout's
steps under the current weights and minimise the clipped ratio loss plus the KL to the reference."""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch

from runtime.algorithms import advantages as adv_fn
from runtime.algorithms import bpgo, min_norm, self_paced, vipo
from runtime.algorithms.ppo import clipped_policy_loss, gaussian_kl, per_position_logprob
from runtime.algorithms.sde import sde_step_mean
from runtime.context import JobContext
from vpolang.plan import ExecutionBlock
from runtime.data.sources import load_prompts
from runtime.models.sampler import guided_velocity, sample
from runtime.models.sampler import initial_noise as draw_noise
from runtime.rewards.backbones import load_backbone
from runtime.rewards.registry import gate_mask, score_expression, score_reward

from .common import (Loop, batch_indices, encode_cached, load_policy, pin_reference, policy_from_ref, policy_updater,
                     save_policy, step_generator)
from .parallel import gather_rows, mean_over_ranks, share


class Priors:
    """BPGO's per-prompt prior reward: a running mean of the prompt's group means, or the rewards of a
    prior policy (e.g. the SFT stage) on the same prompt, sampled once and cached."""

    def __init__(self, ctx: JobContext, bpgo_cfg: dict, reward_fn):
        self.ctx, self.cfg, self.reward_fn = ctx, bpgo_cfg, reward_fn
        self.values: dict[str, float] = {}
        self.prior_policy = None if bpgo_cfg["prior"] == "running_mean" else policy_from_ref(ctx, bpgo_cfg["prior"])

    def get(self, prompt: str, group_mean: float) -> float:
        if prompt not in self.values:
            self.values[prompt] = group_mean if self.prior_policy is None else self._sample_prior(prompt)
        return self.values[prompt]

    def update(self, prompt: str, group_mean: float) -> None:
        if self.prior_policy is None:
            self.values[prompt] = 0.9 * self.values.get(prompt, group_mean) + 0.1 * group_mean

    def _sample_prior(self, prompt: str) -> float:
        cfg = self.ctx.config
        pol = self.prior_policy
        # a stable seed per prompt (Python's hash() is salted per process: resumes and ranks would differ)
        gen = torch.Generator().manual_seed(zlib.crc32(prompt.encode()))
        shape = (4, *pol.latent_shape(cfg["frames"], *cfg["resolution"]))
        text = pol.encode_prompts([prompt] * 4)
        videos = pol.decode(sample(pol, text, torch.randn(shape, generator=gen).to(self.ctx.device), cfg["sample_steps"]).final)
        return float(self.reward_fn(videos, [prompt] * 4).mean())


@dataclass
class Scores:
    """What the rewards said about a batch of rollouts: the combined reward, each term (for logging),
    each reward of a joint objective, and the gate's verdict."""

    reward: torch.Tensor
    terms: dict[str, torch.Tensor]
    joint: list[torch.Tensor] | None
    gate: torch.Tensor | None


def score_rollouts(cfg: dict, videos, prompts, ctx) -> Scores:
    """Scores of the whole global batch: each rank scores its own rollouts, then the scores are
    gathered (in global order) before anything per group is computed, since a group may lie on several
    ranks (the execution block splits rollouts, not groups)."""
    scored = score_expression(cfg["reward"], videos, prompts, ctx)
    gate = gather_rows(gate_mask(cfg["gate"], videos, prompts, ctx)) if cfg.get("gate") else None
    terms = {k: gather_rows(v) for k, v in scored["terms"].items()}
    if cfg.get("self_paced"):
        sp = cfg["self_paced"]
        comps = gather_rows(torch.stack([score_reward(r, videos, prompts, ctx) for r in sp["phases"]], dim=1))
        g = cfg["group_size"]
        combined = torch.cat([self_paced.combine_components(c, self_paced.self_paced_weights(
            c, sp["tau"], sp["beta"], sp["saturate_below"])) for c in comps.split(g)])
        return Scores(combined, terms, None, gate)
    if "joint" in scored:
        joint = [gather_rows(r) for r in scored["joint"]]
        return Scores(torch.stack(joint).mean(0), terms, joint, gate)
    return Scores(gather_rows(scored["total"]), terms, None, gate)


def group_adv(cfg: dict, r: torch.Tensor) -> torch.Tensor:
    g = cfg["group_size"]
    return adv_fn.group_advantages(r.view(-1, g), cfg["adv_ddof"], cfg["adv_eps"], cfg["adv_clip"],
                                   cfg["global_std"]).flatten()


def joint_advantages(cfg: dict, per_reward: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each reward gets its own group advantage, then they are combined (min-norm, sum or weights)."""
    advs = [group_adv(cfg, r) for r in per_reward]
    balance = cfg["reward"]["balance"]
    if balance == "min_norm":
        weights = min_norm.min_norm_weights(torch.stack(advs))
    elif balance == "weights":
        weights = torch.tensor(cfg["reward"]["weights"], dtype=torch.float32)
    else:
        weights = torch.ones(len(advs))
    return min_norm.combine(advs, weights), weights


def compute_advantages(cfg, scores: Scores, prompts: list[str], priors: Priors | None):
    """Advantages of the whole batch (every rank computes the same ones from the gathered scores)."""
    r, per_reward = scores.reward, scores.joint
    info = {f"reward/{k}": float(v.mean()) for k, v in scores.terms.items()}
    info["reward_mean"], info["reward_std"] = float(r.mean()), float(r.std())
    g = cfg["group_size"]
    if per_reward is not None:
        advantage, weights = joint_advantages(cfg, per_reward)
        info.update({f"joint_weight/{i}": float(w) for i, w in enumerate(weights)})
    elif priors is not None and cfg["bpgo"]["form"] == "teleboost":
        b = cfg["bpgo"]
        groups = r.view(-1, g)
        scaled = []
        for k, grp in enumerate(groups):
            prompt = prompts[k * g]
            prior = priors.get(prompt, float(grp.mean()))
            a = adv_fn.group_advantages(bpgo.crt_teleboost(grp, prior, b["a"], b["tau"]), cfg["adv_ddof"],
                                        cfg["adv_eps"], cfg["adv_clip"])
            scaled.append(a * bpgo.ras_scale_teleboost(grp, prior, b["alpha"]))
            priors.update(prompt, float(grp.mean()))
        advantage = torch.cat(scaled)
    elif priors is not None:
        b = cfg["bpgo"]
        groups = r.view(-1, g)
        base = group_adv(cfg, r).view(-1, g)
        out = []
        for k, grp in enumerate(groups):
            prior = priors.get(prompts[k * g], float(grp.mean()))
            w = bpgo.ras_weight_paper(grp.mean(), prior, b["alpha"], b["k"])
            crt = adv_fn.group_advantages(bpgo.crt_paper(grp, prior, b["lam"]), cfg["adv_ddof"], cfg["adv_eps"],
                                          cfg["adv_clip"])
            out.append(w * base[k] + b["zeta"] * crt)
            priors.update(prompts[k * g], float(grp.mean()))
        advantage = torch.cat(out)
    else:
        advantage = group_adv(cfg, r)
    keep = torch.ones_like(advantage, dtype=torch.bool)
    if scores.gate is not None:
        ok = scores.gate
        info["gate_pass"] = float(ok.float().mean())
        if cfg["gate_action"] == "zero":
            advantage = torch.where(ok, advantage, torch.zeros_like(advantage))
        else:
            keep &= ok
    if cfg.get("best_of_n"):
        keep &= adv_fn.best_of_n_mask(advantage.view(-1, g), cfg["best_of_n"]).flatten()
    info["adv_abs_mean"] = float(advantage.abs().mean())
    return advantage, keep, info


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
    cfg = ctx.config
    ctx.seed_everything()
    policy = load_policy(ctx)
    prompts_pool = load_prompts(cfg["prompts"], ctx.recipe_dir)
    steps = cfg["steps"] or max(1, math.ceil(cfg["epochs"] * len(prompts_pool) / cfg["batch"]))
    g, T = cfg["group_size"], cfg["sample_steps"]
    cache: dict = {}
    priors = Priors(ctx, cfg["bpgo"], lambda v, p: score_expression(cfg["reward"], v, p, ctx).get(
        "total", torch.zeros(len(p)))) if cfg.get("bpgo") else None
    backbone = load_backbone(cfg["vipo"]["backbone"], ctx.recipe_dir, policy.spec["family"]) if cfg.get("vipo") else None
    clip_range = cfg["vipo"]["clip_range"] if cfg.get("vipo") else cfg["clip_range"]
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
        uncond = encode_cached(policy, [""] * local, cache) if cfg["guidance"] != 1.0 else None
        traj = sample(policy, text, noise[mine].to(ctx.device), T, cfg["noise"], cfg["noise_level"], gen,
                      cfg["guidance"], uncond, rows=(mine, n))
        videos = policy.decode(traj.final)
        scores = score_rollouts(cfg, videos, prompts[mine], ctx)
        advantage, keep, info = compute_advantages(cfg, scores, prompts, priors)
        dense = vipo_maps(backbone, videos, latent, cfg["vipo"]["sigma"]) if backbone else None
        policy.train()
        for _ in range(cfg["updates_per_batch"]):
            info.update(update(policy, updater, cfg, traj, text, uncond, advantage, keep, dense, clip_range, gen,
                               mine, ctx.execution))
        return info

    if cfg["kl"] > 0:
        pin_reference(policy)  # the KL's reference is the starting weights, also after a resume
    updater = policy_updater(ctx, policy)
    if Loop(ctx, policy, updater, steps).run(step):
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
    k_per_sample = max(1, round(cfg["train_fraction"] * len(trainable_steps)))
    n = advantage.shape[0]
    drawn = torch.stack([torch.tensor(trainable_steps)[torch.randperm(len(trainable_steps), generator=gen)]
                         for _ in range(n)])[:, :k_per_sample]
    order, mine_adv, keep_mine = drawn[mine], advantage[mine], keep[mine]
    world, micro = block.world_size, block.micro_batch
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
    mu, std = sde_step_mean(x, v, s, s_next, level)
    a = advantage[rows].to(mu.device)
    if dense is not None:
        old = per_position_logprob(x_next, traj.mus[k][rows], std)
        new = per_position_logprob(x_next, mu, std)
        a_map = dense[rows].unsqueeze(1).to(mu.device) * a.view(-1, 1, 1, 1, 1)
        loss, clip_frac = clipped_policy_loss(new, old, a_map.expand_as(new), clip_range)
    else:
        z = (x_next - mu) / std
        logp = (-0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)).flatten(1).mean(1)
        loss, clip_frac = clipped_policy_loss(logp, traj.logps[rows, k].to(logp.device), a, clip_range)
    kl = torch.zeros(())
    if cfg["kl"] > 0:
        with torch.no_grad(), policy.reference() as ref:
            mu_ref, _ = sde_step_mean(x, guided_velocity(policy, x, s, sub_text, sub_uncond, cfg["guidance"], ref),
                                      s, s_next, level)
        kl = gaussian_kl(mu, mu_ref, level).mean()
        loss = loss + cfg["kl"] * kl
    weight = 0.0 if placeholder else weight
    updater.backward(loss * weight)
    return {"loss": float(loss.detach()) * weight, "kl": float(kl.detach()) * weight,
            "clip_frac": float(clip_frac) * weight}
