"""Reward-model objectives and the judge's tercile labels against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from runtime.algorithms.metrics import bradley_terry_loss
from runtime.algorithms.pairs import tercile_labels
from runtime.algorithms.reward_model import (label_targets, pair_accuracy, pairwise_loss, pointwise_loss,
                                             verdict_target)


def test_verdicts_per_dimension_and_defaults():
    assert verdict_target(None, tie=False) == 1.0 and verdict_target(None, tie=True) == 0.5
    assert [verdict_target(v, False) for v in ("chosen", "Rejected", "tie", "same", "A", "b", 0.25)] == \
        [1.0, 0.0, 0.5, 0.5, 1.0, 0.0, 0.25]
    for bad in ("better", 1.5, True):
        with pytest.raises(ValueError, match="per-dimension verdict"):
            verdict_target(bad, False)


def test_pairwise_loss_is_bradley_terry_with_ties_as_half():
    r_w, r_l = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    target = torch.tensor([[1.0, 0.5]])
    # head 1: -log sigmoid(1) = 0.313262; head 2: d = 0, tie -> log 2 = 0.693147
    assert float(pairwise_loss(r_w, r_l, target)) == pytest.approx((0.313262 + math.log(2)) / 2, abs=1e-6)
    assert float(pairwise_loss(r_w, r_l, target, ties=False)) == pytest.approx(0.313262, abs=1e-6)
    same = bradley_terry_loss(r_w[:, 0], r_l[:, 0], target[:, 0])
    assert float(pairwise_loss(r_w[:, :1], r_l[:, :1], target[:, :1])) == pytest.approx(float(same))


def test_label_targets_and_pointwise_loss():
    assert label_targets(["good", "normal", "bad"]).tolist() == [1.0, 0.5, 0.0]
    assert label_targets([2.0, 4.0, 3.0]).tolist() == [0.0, 1.0, 0.5]  # scores min-max scaled
    r = torch.tensor([[0.0, 1.0]])
    expected = (math.log(2) + (-math.log(1 / (1 + math.exp(-1))))) / 2  # target 1 on both heads
    assert float(pointwise_loss(r, torch.tensor([1.0]))) == pytest.approx(expected, abs=1e-6)


def test_pair_accuracy_counts_decided_verdicts_only():
    r_w, r_l = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    target = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    assert pair_accuracy(r_w, r_l, target) == pytest.approx(1.0)  # (right, right, -, right)
    assert math.isnan(pair_accuracy(r_w, r_l, torch.full((2, 2), 0.5)))


def test_tercile_labels_rank_within_a_prompt():
    assert tercile_labels(torch.tensor([0.2, 0.9, 0.5])) == ["bad", "good", "normal"]
    assert tercile_labels(torch.tensor([1.0, 0.0])) == ["good", "bad"]
    assert tercile_labels(torch.tensor([0.3, 0.3, 0.3])) == ["normal"] * 3  # no information: no verdict
    assert tercile_labels(torch.tensor([5.0, 1, 2, 3, 4, 6])) == ["good", "bad", "bad", "normal", "normal", "good"]
