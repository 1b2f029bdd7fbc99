"""GRPO's default learning-rate warm-up and the held-out reversal gap, against hand-computed vectors."""
from __future__ import annotations

import pytest
import torch

from types import SimpleNamespace

from runtime.algorithms import flow
from runtime.algorithms.schedule import warmup_lr, warmup_steps
from runtime.trainers.common import lr_at
from vpolang.schema.stages.grpo import Grpo
from vpolang.schema.stages.sft import Sft


def test_warmup_steps_vectors():
    assert warmup_steps(None, 96) == 24
    assert warmup_steps(None, 40) == 10
    assert warmup_steps(None, 1) == 1
    assert warmup_steps(None, 0) == 0
    assert warmup_steps(None, 10, fraction=0.5) == 5
    assert warmup_steps(0, 96) == 0  # explicitly none
    assert warmup_steps(7, 96) == 7


def test_warmup_lr_vectors():
    assert [warmup_lr(i, 1e-4, 4) for i in range(6)] == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4, 1e-4, 1e-4])
    assert warmup_lr(0, 3e-4, 0) == 3e-4


def test_grpo_warms_up_by_default_and_other_stages_do_not():
    """The old behaviour (issue 18's collapse): GRPO's first step ran at the full lr."""
    grpo = Grpo.model_fields["warmup"].default
    sft = Sft.model_fields["warmup"].default
    assert grpo is None and sft == 0
    assert lr_at(0, SimpleNamespace(lr=1e-4, warmup=grpo), steps=40) == pytest.approx(1e-5)
    assert lr_at(9, SimpleNamespace(lr=1e-4, warmup=grpo), steps=40) == pytest.approx(1e-4)
    assert lr_at(0, SimpleNamespace(lr=1e-4, warmup=sft), steps=40) == 1e-4


def test_reversal_gap_vectors():
    """A velocity that is exactly right for the forward clip: its error is 0 there and positive on the
    reversed copy; the gap is the reversed copy's error, paired over the same draws."""
    torch.manual_seed(0)
    forward = torch.randn(3, 2, 4, 2, 2)  # (B, C, F, H, W)
    backward = forward.flip(2)

    def oracle(x_s, s, text):  # solves x_s = (1 - s) x0 + s eps for the forward clip's target eps - x0
        s = s.view(-1, 1, 1, 1, 1)
        eps = (x_s - (1 - s) * forward) / s
        return eps - forward

    gap = flow.reversal_gap(oracle, forward, backward, None, draws=2, seed=3)
    expected = flow.mean_flow_errors(oracle, backward, None, draws=2, seed=3)
    assert torch.allclose(flow.mean_flow_errors(oracle, forward, None, draws=2, seed=3), torch.zeros(3), atol=1e-10)
    assert torch.allclose(gap, expected) and bool((gap > 0).all())
    # by hand for one draw: eps and s from the same generator; error on the reversed clip is
    # mean(((x_s - (1 - s) f) / s - f - (eps - b))^2) with x_s = (1 - s) b + s eps  =>  mean(((b - f) / s)^2)
    g = torch.Generator().manual_seed(3)
    _, s = torch.randn(forward.shape, generator=g), flow.sample_sigmas(3, g)
    by_hand = ((backward - forward) / s.view(-1, 1, 1, 1, 1)).pow(2).flatten(1).mean(1)
    assert torch.allclose(flow.reversal_gap(oracle, forward, backward, None, draws=1, seed=3), by_hand, rtol=1e-4)
