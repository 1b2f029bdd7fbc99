"""The compiler's table of rewards without a gradient (E0324, vpolang/preflight/nrg_differentiable.py)
is the runtime's: NRG reads `score` of a video that requires grad, and exactly these lose the graph."""
from __future__ import annotations

import pytest
import torch

from runtime.rewards.shapes_world import ShapesWorldReward
from runtime.rewards.weight_free import METRICS, WeightFreeReward
from runtime.shapes import rewards as shapes_rewards
from vpolang.preflight.nrg_differentiable import differentiable

CASES = [("weight_free", m) for m in METRICS] + [("shapes", m) for m in shapes_rewards.METRICS]


@pytest.mark.parametrize("kind,metric", CASES)
def test_gradient_table_matches_the_rewards(kind, metric):
    videos = (torch.rand(2, 5, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1).requires_grad_(True)
    reward = WeightFreeReward(metric, 16) if kind == "weight_free" else ShapesWorldReward(metric)
    scores = reward.score(videos, ["a red circle moving left"] * 2)[metric]
    assert scores.requires_grad == differentiable({"kind": kind, "metric": metric}), (kind, metric)
