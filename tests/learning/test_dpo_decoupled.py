"""The DPO trainer's decoupled backward leaves the same weights as the standard path on a tiny video model."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from runtime.models.families import build_policy
from tests.runtime.conftest import job_dir, vpo
from vpolang.api import check_file
from vpolang.lower import lower

RECIPE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }

stage pref = dpo(tiny) {
  pairs    = synthetic(shapes.videos(n = 16, seed = 1), negatives = [reverse])
  beta     = 500
  steps    = 3
  batch    = 4
  lr       = 1e-3
  backward = MODE
}
"""


def test_decoupled_and_standard_dpo_train_to_the_same_weights(tmp_path):
    weights = {}
    for mode in ("standard", "decoupled"):
        recipe = tmp_path / f"{mode}.vpo"
        recipe.write_text(RECIPE.replace("MODE", mode))
        vpo("run", recipe, "--run-dir", tmp_path / mode, "--progress", "quiet")
        weights[mode] = load_file(str(job_dir(tmp_path / mode, "pref") / "artifacts" / "policy" / "weights.safetensors"))
    start = initial()
    moved = max(float((w - start[name]).abs().max()) for name, w in weights["standard"].items())
    assert moved > 1e-3  # training did change the weights
    steps, lr = 3, 1e-3
    for name, value in weights["standard"].items():
        other = weights["decoupled"][name]
        # Equal up to fp32 summation order. Adam divides each gradient by its own running magnitude, so a
        # parameter whose gradient is ~0 can take a full-size step either way from a 1e-8 difference:
        # such flips are rare and bounded by one step of size lr per update.
        close = torch.isclose(other, value, rtol=1e-3, atol=5e-5)
        assert close.float().mean() > 0.99, (name, float(close.float().mean()))
        assert float((other - value).abs().max()) <= 2 * steps * lr, name

def initial() -> dict[str, torch.Tensor]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.vpo"
        path.write_text(RECIPE.replace("MODE", "standard"))
        spec = lower(check_file(path).recipe).job("pref").config.model.model_dump()
    return dict(build_policy(spec, seed=0).transformer.state_dict())
