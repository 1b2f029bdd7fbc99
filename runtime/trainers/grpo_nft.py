"""DiffusionNFT as GRPO's `objective = nft` (docs/algorithms.md §S3.6): the same rollouts, rewards and
advantages (every step of §S2), then flow matching on the rollouts' clean samples instead of the
ratio loss over SDE steps (runtime/algorithms/nft.py). No log-prob is read: the rollouts may come from
the ODE (`noise = ode`) or any SDE."""
from __future__ import annotations

import torch

from runtime.algorithms import nft
from runtime.algorithms.guard import velocity_kl
from vpolang.plan import ExecutionBlock

from . import grpo_options as opt
from .parallel import mean_over_ranks


def update(policy, updater, cfg: dict, traj, text, advantage: torch.Tensor, keep: torch.Tensor,
           gen: torch.Generator, mine: slice, block: ExecutionBlock) -> dict[str, float]:
    """`updates_per_batch` optimiser steps on this rank's rows of the global batch. Each rollout is
    noised again at `train_fraction` of the schedule's T levels (a per-sample draw, like GRPO's
    timesteps; every rank draws the whole batch's levels and noise and keeps its rows), the sampling
    policy's velocity there is computed once, before the first step (v_old), and each step's loss is
    the mean NFT loss over the global batch (dropped samples weigh 0)."""
    levels = traj.sigmas[:-1]  # the T noise levels the sampler visited (all > 0)
    T = len(levels)
    k = opt.steps_per_sample(cfg, T)
    n = advantage.shape[0]
    drawn = torch.stack([torch.randperm(T, generator=gen) for _ in range(n)])[:, :k]
    x0_all = traj.final
    eps = torch.randn((k, n, *x0_all.shape[1:]), generator=gen)[:, mine]
    s_rows = levels[drawn[mine]].T.contiguous()  # (k, rows) the level of each row's j-th draw
    x0 = x0_all.float()
    r = nft.optimality_probability(advantage[mine], cfg["adv_clip"]).to(x0.device)
    weight_rows = keep[mine].float().to(x0.device)
    world, micro = block.world_size, block.micro_batch
    rows = x0.shape[0]
    chunks = [slice(c, min(c + micro, rows)) for c in range(0, rows, micro)]

    texts = [text.index(torch.arange(rows)[c]) for c in chunks]

    def noised(j: int, c: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """x_s = (1 - s) x0 + s eps of the rows c at their j-th drawn level."""
        s = s_rows[j, c].to(x0.device)
        b = s.view(-1, *([1] * (x0.dim() - 1)))
        return (1 - b) * x0[c] + b * eps[j, c].to(x0.device), s

    with torch.no_grad():  # the sampling policy's velocities, before any update of this batch
        v_old = [[policy.velocity(*noised(j, c), texts[ci]) for ci, c in enumerate(chunks)] for j in range(k)]
    totals = {"loss": 0.0, "kl": 0.0, "nft/r_mean": float(r.mean())}
    for _ in range(cfg["updates_per_batch"]):
        for j in range(k):
            for ci, c in enumerate(chunks):
                x_s, s = noised(j, c)
                sub_text = texts[ci]
                v = policy.velocity(x_s, s, sub_text)
                per = nft.nft_loss(v, v_old[j][ci], x_s, x0[c], s, r[c], cfg["nft_beta"])
                kl = torch.zeros(())
                if cfg["kl"] > 0:
                    with torch.no_grad(), policy.reference() as ref:
                        v_ref = policy.velocity(x_s, s, sub_text, ref)
                    kl = velocity_kl(v, v_ref)
                    per = per + cfg["kl"] * kl
                    kl = (kl * weight_rows[c]).sum()
                scale = world / (n * k)
                loss = (per * weight_rows[c]).sum() * scale
                updater.backward(loss)
                totals["loss"] += float(loss.detach()) / cfg["updates_per_batch"]
                totals["kl"] += float(kl.detach()) * scale / cfg["updates_per_batch"]
        totals["grad_norm"] = updater.step()
    return {name: mean_over_ranks(v) for name, v in totals.items()}

