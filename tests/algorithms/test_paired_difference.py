"""The evaluation's paired comparison: policy minus baseline on the same samples."""
from __future__ import annotations

import math

import pytest
import torch

from runtime.algorithms.metrics import paired_difference


def test_hand_computed_values():
    ours, theirs = torch.tensor([0.5, 0.7, 0.4, 0.9]), torch.tensor([0.4, 0.5, 0.4, 0.6])
    d = paired_difference(ours, theirs, resamples=2000)
    # differences 0.1, 0.2, 0.0, 0.3: mean 0.15, sample sd 0.129099, t = 0.15 / (0.129099 / 2)
    assert d["mean"] == pytest.approx(0.15) and d["t"] == pytest.approx(2.32379, rel=1e-5) and d["n"] == 4
    # sign flips: only all-positive and all-negative reach |0.15| (the 0.0 flips to itself): 4 of 16 patterns
    assert d["p"] == pytest.approx(4 / 16, abs=0.03)
    assert 0.0 <= d["ci95"][0] <= 0.15 <= d["ci95"][1] <= 0.3


def test_pairing_sees_a_small_shift_that_independent_intervals_miss():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(400, generator=g)  # per-prompt difficulty, shared by both policies
    ours, theirs = base + 0.02 + 0.01 * torch.randn(400, generator=g), base
    d = paired_difference(ours, theirs)
    assert d["p"] < 0.01 and d["ci95"][0] > 0 and d["t"] > 10


def test_no_difference_is_not_significant_and_identical_scores_give_p_one():
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(300, generator=g), torch.rand(300, generator=g)
    assert paired_difference(a, b)["p"] > 0.05
    same = paired_difference(a, a)
    assert same["mean"] == 0 and same["t"] == 0 and same["p"] == 1.0


def test_a_single_pair_is_never_significant():
    d = paired_difference(torch.tensor([0.3]), torch.tensor([0.1]))
    assert d["mean"] == pytest.approx(0.2) and math.isnan(d["t"]) and d["p"] == 1.0 and d["n"] == 1


def test_a_constant_shift_has_infinite_t_and_the_smallest_p():
    d = paired_difference(torch.full((12,), 0.6), torch.full((12,), 0.5), resamples=999)
    assert d["t"] == math.inf and d["p"] == pytest.approx(0.001, abs=0.002)
