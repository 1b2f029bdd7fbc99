"""LoRA with `reference = refresh(every = K)` runs (it was refused, E0315, retired): at step K the
reference becomes the policy as it is then, its adapters snapshotted (the base weights are shared), and
a resume after the refresh restores the snapshot, so the resumed run ends with the uninterrupted
run's weights bit for bit."""
from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from tests.runtime.conftest import job_dir, vpo

RECIPE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
reward sharp = weight_free { metric = sharpness }

stage tuned = dpo(tiny) {
  pairs            = online(shapes.prompts(n = 8), judges = [sharp], n = 2, sample_steps = 2)
  reference        = refresh(every = 2)
  lora_rank        = 4
  beta             = 500
  steps            = 5
  batch            = 4
  lr               = 3e-2
  checkpoint_every = 3
}
"""


def test_lora_dpo_refreshes_its_reference_at_k_and_resumes_after_it(tmp_path):
    (tmp_path / "r.vpo").write_text(RECIPE)
    vpo("run", tmp_path / "r.vpo", "--run-dir", tmp_path / "run", "--progress", "quiet")
    folder = job_dir(tmp_path / "run", "tuned")
    margins = [json.loads(line)["margin"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert len(margins) == 5  # past step K = 2, and past the second refresh at 4
    # the margin is measured against the reference under the weights that take the step: zero where
    # the reference is those weights (the start, and each refresh at steps 2 and 4), not in between
    assert [abs(m) < 1e-7 for m in margins] == [True, False, True, False, True], margins
    first = load_file(str(folder / "artifacts" / "policy" / "weights.safetensors"))
    assert json.loads((folder / "artifacts" / "policy" / "policy.json").read_text())["lora"]["rank"] == 4

    # a second attempt from the step-3 checkpoint (after the refresh at 2) ends where the first did
    (folder / "status.json").unlink()
    for path in sorted((folder / "artifacts").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    vpo("run", tmp_path / "r.vpo", "--run-dir", tmp_path / "run", "--progress", "quiet")
    assert "resumed from checkpoint at step 3" in (folder / "log.txt").read_text()
    again = load_file(str(folder / "artifacts" / "policy" / "weights.safetensors"))
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
