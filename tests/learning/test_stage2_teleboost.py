"""examples/teleboost.vpo's GRPO stage, shapes-sized, runs every Stage II modifier at once and each one
shows in the metrics (docs/algorithms.md §S2): joint min-norm weights, self-paced weights, BPGO trust and
a per-head prior from the SFT stage, the gate, and ViPO maps with structure."""
from __future__ import annotations

import json
from pathlib import Path

from tests.runtime.conftest import job_dir, vpo
from vpolang.api import check_file
from vpolang.lower import lower

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "teleboost.vpo"
# stand-ins for videoalign vq, mq, ta: pixel statistics, which vary on an untrained policy's rollouts
# (the shapes world's exact rewards are all 0 until the policy draws shapes)
HEADS = ["sharp", "flicker", "flow"]

RECIPE = f"""vpo 0.1
use std.shapes
model tiny = shapes.tiny_dit {{ layers = 1, hidden = 32, heads = 2, ffn = 64 }}
reward sharp   = weight_free {{ metric = sharpness }}
reward flicker = weight_free {{ metric = temporal_flicker }}
reward flow    = weight_free {{ metric = flow_magnitude }}
stage sft = sft(tiny) {{
  data  = shapes.videos(n = 8)
  steps = 2
  batch = 4
  lr    = 1e-4
}}
stage rl = grpo(sft) {{
  prompts    = shapes.prompts(n = 4)
  group_size = 4
  batch      = 2
  steps      = 2
  lr         = 1e-4
  kl         = 0.004
  reward     = joint([{", ".join(HEADS)}], balance = min_norm)
  gate       = sharp >= GATE
  with vipo       {{ backbone = "shapes", level = latent }}
  with bpgo       {{ prior = sft }}
  with self_paced {{ phases = [{", ".join(HEADS)}], saturate_below = 0.05 }}
}}
"""


def test_the_copy_has_the_examples_grpo_structure():
    rl = lower(check_file(EXAMPLE).recipe).job("rl").config.model_dump()
    assert rl["reward"]["kind"] == "joint" and rl["reward"]["balance"] == "min_norm" and len(rl["reward"]["rewards"]) == 3
    assert rl["gate"] and rl["vipo"]["level"] == "latent" and rl["bpgo"]["prior"]["name"] == "sft"
    assert len(rl["self_paced"]["phases"]) == 3 and rl["self_paced"]["saturate_below"] == 0.05


def test_every_modifier_is_active_in_the_metrics(tmp_path):
    recipe = tmp_path / "teleboost_shapes.vpo"
    recipe.write_text(RECIPE.replace("GATE", "0.304"))
    vpo("run", recipe, "--run-dir", tmp_path / "run", "--progress", "quiet", OMP_NUM_THREADS="2")
    rows = [json.loads(line) for line in (job_dir(tmp_path / "run", "rl") / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        joint = [row[f"joint_weight/{k}"] for k in range(3)]
        assert abs(sum(joint) - 1) < 1e-5 and min(joint) >= 0
        curriculum = [row[f"self_paced_weight/{j}"] for j in range(3)]
        assert abs(sum(curriculum) - 1) < 1e-5 and min(curriculum) > 0
        for head in HEADS:
            assert row[f"bpgo/trust/{head}"] > 0
            assert 0 <= row[f"bpgo/prior/{head}"] <= 1
        assert 0 <= row["gated_fraction"] <= 1
        assert row["vipo/map_std"] > 0 and row["vipo/map_min"] < row["vipo/map_max"]
        assert row["adv_abs_mean"] > 0 and row["grad_norm"] >= 0
    assert any(0 < row["gated_fraction"] < 1 for row in rows)  # the gate bites, and not on everything
    assert any(max(row[f"joint_weight/{k}"] for k in range(3)) < 1 for row in rows)  # min-norm mixes heads
    # the priors come from the SFT policy, per head: not the zeros the joint reward used to get
    assert any(row[f"bpgo/prior/{h}"] > 0 for row in rows for h in HEADS)
    assert len({round(rows[0][f"bpgo/prior/{h}"], 6) for h in HEADS}) > 1
