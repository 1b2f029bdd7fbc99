"""Hand-written SFT, DPO and GRPO steps on a Wan pipeline folder: what vpo's trainers are compared with.

Each loop does the math of the trainer it stands beside with nothing else: the transformer loaded with
`from_pretrained` in bf16, fp32 master weights and fused AdamW (as vpo's updater on one GPU), latents
encoded once, random text states of the encoder's shape, a frozen copy of the weights as the reference.
The algorithms' formulas come from runtime.algorithms (the pure functions the trainers compose), so the
loops differ from the trainers only in bookkeeping: data loading, caching, metrics, checkpoints.
"""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch

from gpu_dpo_memory import errors
from gpu_optimizer_step import MasterAdamW
from runtime.algorithms.ppo import clipped_policy_loss, gaussian_kl
from runtime.algorithms.sde import sde_step_mean

TEXT_TOKENS = 512  # the tiny UMT5 tokenizer pads to Wan's text length


def load(folder: Path):
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    model = WanTransformer3DModel.from_pretrained(folder / "transformer", torch_dtype=torch.bfloat16).cuda()
    vae = AutoencoderKLWan.from_pretrained(folder / "vae").cuda()
    return model, vae


def latents(vae, frames: int, h: int, w: int, n: int) -> torch.Tensor:
    video = torch.rand(n, 3, frames, h, w, device="cuda") * 2 - 1
    with torch.no_grad():
        return vae.encode(video).latent_dist.mean.to(torch.bfloat16)


def velocity(model, x, s: torch.Tensor, text):
    return model(hidden_states=x.to(torch.bfloat16), timestep=s * 1000, encoder_hidden_states=text,
                 return_dict=False)[0]


def timed(step, steps: int) -> float:
    times = []
    for i in range(steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def flow_errors(model, x0, eps, s, text):
    """Per-sample flow-matching error at noise level s in [0, 1] (gpu_dpo_memory's, which takes t = 1000 s)."""
    return errors(model, x0, eps, s * 1000, text)


def sft(folder: Path, frames: int, h: int, w: int, steps: int) -> float:
    model, vae = load(folder)
    x0 = latents(vae, frames, h, w, 1)
    text = torch.randn(1, TEXT_TOKENS, 4096, device="cuda", dtype=torch.bfloat16)
    opt = MasterAdamW([p for p in model.parameters() if p.requires_grad], 1e-5, fused=True)

    def step():
        loss = flow_errors(model, x0, torch.randn_like(x0), torch.rand(1, device="cuda"), text).mean()
        loss.backward()
        opt.step(1.0)
        float(loss)
    return timed(step, steps)


def dpo(folder: Path, frames: int, h: int, w: int, steps: int, beta: float = 500.0) -> float:
    model, vae = load(folder)
    reference = copy.deepcopy(model).requires_grad_(False)
    x_w = latents(vae, frames, h, w, 1)
    x_l = x_w.flip(2)  # the reversed clip, as the synthetic negative
    text = torch.randn(1, TEXT_TOKENS, 4096, device="cuda", dtype=torch.bfloat16)
    opt = MasterAdamW([p for p in model.parameters() if p.requires_grad], 1e-5, fused=True)

    def step():
        eps, s = torch.randn_like(x_w), torch.rand(1, device="cuda")  # shared by winner and loser
        with torch.no_grad():
            ref_w, ref_l = flow_errors(reference, x_w, eps, s, text), flow_errors(reference, x_l, eps, s, text)
        err_w, err_l = flow_errors(model, x_w, eps, s, text), flow_errors(model, x_l, eps, s, text)
        margin = (err_w - ref_w) - (err_l - ref_l)
        loss = -torch.nn.functional.logsigmoid(-beta / 2 * margin).mean()
        loss.backward()
        opt.step(1.0)
        float(loss)
    return timed(step, steps)


def grpo(folder: Path, frames: int, h: int, w: int, steps: int, group: int = 2, sample_steps: int = 6,
         fraction: float = 0.5, level: float = 0.7, kl_weight: float = 0.01) -> float:
    model, vae = load(folder)
    reference = copy.deepcopy(model).requires_grad_(False)
    shape = latents(vae, frames, h, w, 1).shape[1:]
    text = torch.randn(group, TEXT_TOKENS, 4096, device="cuda", dtype=torch.bfloat16)
    opt = MasterAdamW([p for p in model.parameters() if p.requires_grad], 1e-5, fused=True)
    sigmas = torch.linspace(1, 0, sample_steps + 1)
    sigmas = (3 * sigmas / (1 + 2 * sigmas)).tolist()  # shift 3

    def level_at(k: int) -> float:
        return 0.0 if k == sample_steps - 1 else level * math.sqrt(sigmas[k] / (1 - min(sigmas[k], 0.999)))

    def step():
        x = torch.randn(group, *shape, device="cuda")
        states, logps = [x], []
        with torch.no_grad():  # rollouts through the SDE sampler, log-probs stored
            for k in range(sample_steps):
                s = torch.full((group,), sigmas[k], device="cuda")
                mu, std = sde_step_mean(x, velocity(model, x, s, text), sigmas[k], sigmas[k + 1], level_at(k))
                x = mu + std * torch.randn_like(mu) if std > 0 else mu
                logps.append(-0.5 * ((x - mu) / max(std, 1e-12)).pow(2).flatten(1).mean(1))
                states.append(x)
            videos = vae.decode(x.to(torch.float32)).sample
            reward = -(videos[:, :, 1:] - videos[:, :, :-1]).abs().flatten(1).mean(1)  # temporal flicker
        advantage = (reward - reward.mean()) / (reward.std() + 1e-4)
        trainable = list(range(sample_steps - 1))
        chosen = [sorted(torch.randperm(len(trainable))[:max(1, round(fraction * len(trainable)))].tolist())
                  for _ in range(group)]
        for j in range(len(chosen[0])):
            for k in sorted({c[j] for c in chosen}):
                rows = torch.tensor([i for i, c in enumerate(chosen) if c[j] == k], device="cuda")
                s = torch.full((len(rows),), sigmas[k], device="cuda")
                xk, xn = states[k][rows], states[k + 1][rows]
                mu, std = sde_step_mean(xk, velocity(model, xk, s, text[rows]), sigmas[k], sigmas[k + 1], level_at(k))
                z = (xn - mu) / std
                logp = (-0.5 * z.pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)).flatten(1).mean(1)
                old = logps[k][rows] - math.log(std) - 0.5 * math.log(2 * math.pi)
                loss, _ = clipped_policy_loss(logp, old, advantage[rows], 1e-4)
                with torch.no_grad():
                    mu_ref, _ = sde_step_mean(xk, velocity(reference, xk, s, text[rows]), sigmas[k], sigmas[k + 1],
                                              level_at(k))
                loss = loss + kl_weight * gaussian_kl(mu, mu_ref, level_at(k)).mean()
                (loss * len(rows) / (group * len(chosen[0]))).backward()
                float(loss.detach())
        opt.step(1.0)
    return timed(step, steps)


BARE = {"sft": sft, "dpo": dpo, "grpo": grpo}
