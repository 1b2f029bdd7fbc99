"""Decoupled DPO backward: every schedule leaves the standard path's gradients (fp32)."""
from __future__ import annotations

import pytest
import torch

from runtime.algorithms.dpo import beta_at, dpo_backward


def tiny_video_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(3, 8, 3, padding=1), torch.nn.GELU(), torch.nn.Conv3d(8, 3, 3, padding=1))


def branch(model, x, target):
    return lambda: (model(x) - target).pow(2).flatten(1).mean(1)


@pytest.mark.parametrize("mode,pairs", [("teleboost", 2), ("recompute", 2), ("winner_first", 2), ("stashed", 1)])
def test_modes_match_standard_gradients(mode, pairs):
    g = torch.Generator().manual_seed(1)
    xw, xl = torch.randn(pairs, 3, 4, 8, 8, generator=g), torch.randn(pairs, 3, 4, 8, 8, generator=g)
    tw, tl = torch.randn(pairs, 3, 4, 8, 8, generator=g), torch.randn(pairs, 3, 4, 8, 8, generator=g)
    ref_w, ref_l = torch.tensor([1.0, 1.1])[:pairs], torch.tensor([1.05, 1.0])[:pairs]
    grads, losses = {}, {}
    for m in ("standard", mode):
        model = tiny_video_model()
        losses[m] = float(dpo_backward(branch(model, xw, tw), branch(model, xl, tl), ref_w, ref_l, beta=3.0, mode=m,
                                       scale=0.5, nll_winner=0.2, params=list(model.parameters())))
        grads[m] = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert losses[mode] == pytest.approx(losses["standard"], rel=1e-6)
    torch.testing.assert_close(grads[mode], grads["standard"], rtol=1e-5, atol=1e-7)
    assert float(grads["standard"].abs().sum()) > 0


def test_beta_schedules():
    assert beta_at({"kind": "constant", "value": 5.0}, 3, 10) == 5.0
    lin = {"kind": "linear", "start": 5000.0, "end": 4500.0}
    assert beta_at(lin, 0, 11) == 5000.0 and beta_at(lin, 10, 11) == 4500.0 and beta_at(lin, 5, 11) == 4750.0
    cos = {"kind": "cosine", "start": 2.0, "end": 1.0}
    assert beta_at(cos, 0, 5) == 2.0 and beta_at(cos, 4, 5) == pytest.approx(1.0) and beta_at(cos, 2, 5) == pytest.approx(1.5)


def test_stashed_accumulates_onto_existing_gradients():
    g = torch.Generator().manual_seed(2)
    xw, xl, tw, tl = (torch.randn(1, 3, 4, 8, 8, generator=g) for _ in range(4))
    ref_w, ref_l = torch.tensor([1.0]), torch.tensor([1.2])
    grads = {}
    for m in ("standard", "stashed"):
        model = tiny_video_model()
        (model(xw).sum() * 1e-3).backward()  # an earlier micro-batch
        dpo_backward(branch(model, xw, tw), branch(model, xl, tl), ref_w, ref_l, beta=2.0, mode=m, scale=0.5,
                     params=list(model.parameters()))
        grads[m] = torch.cat([p.grad.flatten() for p in model.parameters()])
    torch.testing.assert_close(grads["stashed"], grads["standard"], rtol=1e-5, atol=1e-7)
