"""Trainer state beyond weights, optimiser and RNG goes through state_dict()/load_state_dict() objects
handed to the loop (runtime/trainers/common.py `Stateful`): BPGO's running-mean priors are history a
resumed run cannot recompute, so a GRPO + BPGO job resumed after its priors moved ends with the
uninterrupted run's weights bit for bit."""
from __future__ import annotations

import torch
from safetensors.torch import load_file

from runtime.main import run_job
from vpolang.plan import save_plan
from vpolang.planning import build_plan

from .conftest import job_dir

RECIPE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
reward sharp = weight_free { metric = sharpness }

stage rl = grpo(tiny) {
  prompts          = shapes.prompts(n = 4)
  reward           = sharp
  group_size       = 2
  batch            = 2
  steps            = 3
  sample_steps     = 3
  lr               = 1e-3
  checkpoint_every = 2
  with bpgo {}
}
"""


def run_twice(tmp_path, recipe: str, job: str, resumed_at: int):
    """Runs the recipe's job, then a second attempt from its step-`resumed_at` checkpoint (as after a
    crash that lost the outputs); returns the job folder and both attempts' weights."""
    (tmp_path / "r.vpo").write_text(recipe)
    result, plan = build_plan(tmp_path / "r.vpo", {}, None)
    assert result.ok, [d.message for d in result.diagnostics]
    save_plan(plan, tmp_path / "plan.json")
    assert run_job(tmp_path / "plan.json", job, tmp_path / "run", handle_signals=False) == 0
    folder = job_dir(tmp_path / "run", job)
    first = load_file(str(folder / "artifacts" / "policy" / "weights.safetensors"))
    (folder / "status.json").unlink()
    for path in sorted((folder / "artifacts").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    assert run_job(tmp_path / "plan.json", job, tmp_path / "run", handle_signals=False) == 0
    assert f"resumed from checkpoint at step {resumed_at}" in (folder / "log.txt").read_text()
    again = load_file(str(folder / "artifacts" / "policy" / "weights.safetensors"))
    return folder, first, again


def assert_bitwise(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_grpo_bpgo_resumed_after_its_priors_moved_equals_the_uninterrupted_run(tmp_path):
    folder, first, again = run_twice(tmp_path, RECIPE, "rl", resumed_at=2)
    saved = torch.load(folder / "checkpoints" / "step-00000002" / "state.pt", weights_only=False)
    assert len(saved["extra"]["bpgo_priors"]) == 4  # two steps of two prompts: each has a prior, seen again next
    assert_bitwise(first, again)
