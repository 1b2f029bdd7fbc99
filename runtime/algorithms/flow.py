"""Rectified-flow conventions (ALGORITHMS.md §0): x_s = (1 - s) x0 + s eps, target velocity v = eps - x0."""
from __future__ import annotations

import torch


def shifted_sigmas(num_steps: int, shift: float) -> torch.Tensor:
    """T+1 noise levels from 1 to 0, shifted s' = k s / (1 + (k - 1) s)."""
    s = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)
    return (shift * s / (1 + (shift - 1) * s)).float()


def noised(x0: torch.Tensor, eps: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """x_s = (1 - s) x0 + s eps, with s of shape (B,) broadcast over the other dims."""
    s = _per_sample(s, x0)
    return (1 - s) * x0 + s * eps


def velocity_target(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return eps - x0


def flow_matching_error(v_hat: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per-sample MEAN squared error to the velocity target, in fp32: shape (B,)."""
    diff = v_hat.float() - velocity_target(x0, eps).float()
    return diff.pow(2).flatten(1).mean(1)


def sample_sigmas(batch: int, generator: torch.Generator | None, shift: float = 1.0,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Training noise levels: uniform in (0, 1), then shifted like the sampling schedule."""
    u = torch.rand(batch, generator=generator, device=device).clamp(1e-4, 1 - 1e-4)
    return shift * u / (1 + (shift - 1) * u)


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """fp32 arithmetic for bf16/fp16 inputs; float64 inputs (tests, references) stay float64."""
    x = torch.as_tensor(x)
    return x.double() if x.dtype == torch.float64 else x.float()


def _per_sample(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(s, dtype=like.dtype, device=like.device)
    return s.reshape(-1, *([1] * (like.dim() - 1))) if s.dim() == 1 else s


def mean_flow_errors(velocity, x0: torch.Tensor, text, draws: int = 4, seed: int = 5) -> torch.Tensor:
    """Per video: the flow-matching error of `velocity(x_s, s, text)` averaged over `draws` noises and
    timesteps drawn from `seed` (CPU generator). Every call with the same seed and shape draws the same
    ones, so two calls compare models or videos under shared noise (their differences are paired)."""
    g = torch.Generator().manual_seed(seed)
    total = torch.zeros(x0.shape[0])
    for _ in range(draws):
        eps, s = torch.randn(x0.shape, generator=g).to(x0.device), sample_sigmas(x0.shape[0], g).to(x0.device)
        with torch.no_grad():
            total += flow_matching_error(velocity(noised(x0, eps, s), s, text), x0, eps).cpu()
    return total / draws


def reversal_gap(velocity, forward: torch.Tensor, backward: torch.Tensor, text, draws: int = 4,
                 seed: int = 5) -> torch.Tensor:
    """Per clip: the flow-matching error of the clip played backwards (`backward`: the latents of the
    time-reversed pixels) minus that of the clip (`forward`), under the same noises and timesteps.
    Flow-DPO's implicit reward of forward over reversed motion: higher means reversed motion is less
    likely relative to forward."""
    return mean_flow_errors(velocity, backward, text, draws, seed) - mean_flow_errors(velocity, forward, text, draws, seed)
