"""LoRA with `reference = refresh(every = K)` runs (it was refused, E0315, retired): at step K the
reference becomes the policy as it is then, its adapters snapshotted (the base weights are shared), and
a resume after the refresh restores the snapshot, so the resumed run ends with the uninterrupted
run's weights bit for bit."""
from __future__ import annotations

import json

from .test_trainer_state import assert_bitwise, run_twice

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
    folder, first, again = run_twice(tmp_path, RECIPE, "tuned", resumed_at=3)
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    margins = [r["margin"] for r in records[:5]]  # the first attempt's five steps
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 4, 5]  # past step K = 2, and the refresh at 4
    # the margin is measured against the reference under the weights that take the step: zero where
    # the reference is those weights (the start, and each refresh at steps 2 and 4), not in between
    assert [abs(m) < 1e-7 for m in margins] == [True, False, True, False, True], margins
    assert json.loads((folder / "artifacts" / "policy" / "policy.json").read_text())["lora"]["rank"] == 4
    assert_bitwise(first, again)  # the second attempt resumed after the refresh at 2, snapshot restored
