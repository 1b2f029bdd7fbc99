"""Flow-NRG (ALGORITHMS.md §9; VideoAlign): sampling with reward-gradient guidance,
v~ = v - w * s/(1 - s) * grad_x r.

The reward reads pixels, so it is taken at the step's predicted clean video x0 = x_s - s v, decoded;
the gradient is taken with v held fixed (dx0/dx_s = I), which needs one backward through the reward and
the VAE decoder per step but none through the transformer."""
from __future__ import annotations

import torch

from runtime.algorithms.rwr import nrg_velocity
from runtime.algorithms.schedule import shifted_sigmas
from runtime.errors import JobError
from runtime.rewards.base import OVERALL, Reward, select_head

from .policy import TextCond, VideoPolicy
from .sampler import OFF, Guidance, guided_velocity


def reward_gradient(policy: VideoPolicy, reward: Reward, head: str | None, x: torch.Tensor, s: float,
                    v: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """grad_x r(decode(x - s v)) with v fixed; the reward's own scale (a sum over the batch's rows)."""
    x0 = (x - s * v).detach().requires_grad_(True)
    with torch.enable_grad():
        pixels = policy.codec.decode(x0).float().clamp(-1, 1)
        raw = reward.score(pixels.to(reward.device), prompts)
        if head is None and len(raw) > 1 and OVERALL not in raw:
            raw = {OVERALL: torch.stack([raw[h] for h in reward.heads]).sum(0)}
        scores = select_head(raw, head, reward.name)
        if not scores.requires_grad:
            raise JobError(f"reward `{reward.name}` is not differentiable, so it cannot guide sampling (NRG); "
                           "use a reward model, CLIP, or a differentiable weight-free metric")
        (grad,) = torch.autograd.grad(scores.float().sum(), x0)
    return grad.to(x.dtype)


@torch.no_grad()
def sample_with_nrg(policy: VideoPolicy, text: TextCond, noise: torch.Tensor, steps: int, reward: Reward,
                    head: str | None, prompts: list[str], weight: float, clamp: float = 10.0,
                    cfg: Guidance = OFF) -> torch.Tensor:
    """Deterministic (ODE) sampling from s = 1 to 0 with the reward-guided velocity at every step, on top
    of the classifier-free guided one when `cfg` is active."""
    sigmas = shifted_sigmas(steps, float(policy.spec["shift"]))  # every family fills it (plan or folder)
    x = noise.float()
    uncond = cfg.uncond(policy)
    for k in range(steps):
        s, s_next = float(sigmas[k]), float(sigmas[k + 1])
        v = guided_velocity(policy, x, s, text, uncond, cfg.scale).float()
        grad = reward_gradient(policy, reward, head, x, s, v, prompts)
        x = x + (s_next - s) * nrg_velocity(v, s, weight, grad, clamp)
    return x
