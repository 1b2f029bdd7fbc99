"""Held-out likelihood probes shared by the preference-learning tests (the math: runtime/algorithms/flow.py)."""
from __future__ import annotations

import torch

from runtime.algorithms import flow


def mean_flow_errors(policy, x0: torch.Tensor, text, draws: int = 4, seed: int = 5) -> torch.Tensor:
    """Per video: the flow-matching error averaged over `draws` noises and timesteps drawn from `seed`.
    Every call with the same seed and shape draws the same ones, so two calls compare models or videos
    under shared noise (differences of these means are paired per draw)."""
    return flow.mean_flow_errors(policy.velocity, x0, text, draws, seed)
