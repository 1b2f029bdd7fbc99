"""GRPO with every modifier runs through the real CLI and records what each one did."""
from __future__ import annotations

import json

from tests.runtime.conftest import job_dir, vpo

RECIPE = """vpo 0.1
use std.shapes
model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }
stage rl = grpo(tiny) {
  prompts    = shapes.prompts(n = 4)
  group_size = 4
  batch      = 2
  steps      = 2
  lr         = 1e-4
  kl         = 0.01
  guidance   = 2.0
  REWARD
  gate       = shapes.flicker >= 0.1
  MODIFIERS
}
"""


def metrics(tmp_path, name, reward, modifiers):
    recipe = tmp_path / f"{name}.vpo"
    recipe.write_text(RECIPE.replace("REWARD", reward).replace("MODIFIERS", modifiers))
    vpo("run", recipe, "--run-dir", tmp_path / name, "--progress", "quiet")
    lines = (job_dir(tmp_path / name, "rl") / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_vipo_bpgo_gate_and_guidance(tmp_path):
    rows = metrics(tmp_path, "mods", "reward = shapes.alignment + 0.5 * shapes.smoothness",
                   'with vipo { backbone = "shapes" }\n  with bpgo { prior = running_mean }')
    assert len(rows) == 2
    for row in rows:
        assert 0.0 <= row["gate_pass"] <= 1.0
        assert "reward/shapes.alignment" in row and "reward/shapes.smoothness" in row
        assert row["kl"] >= 0.0 and row["grad_norm"] >= 0.0
        assert row["bpgo/trust/reward"] > 0 and "bpgo/prior/reward" in row  # the sum's total is one head
        assert 0.0 <= row["vipo/map_min"] <= row["vipo/map_mean"] <= row["vipo/map_max"] <= 1.0


def test_joint_min_norm_logs_its_weights(tmp_path):
    rows = metrics(tmp_path, "joint", "reward = joint([shapes.alignment, shapes.smoothness], balance = min_norm)", "")
    weights = [rows[0]["joint_weight/0"], rows[0]["joint_weight/1"]]
    assert abs(sum(weights) - 1.0) < 1e-5 and min(weights) >= 0.0


def test_self_paced_runs(tmp_path):
    rows = metrics(tmp_path, "sp", "reward = shapes.alignment",
                   "with self_paced { phases = [shapes.alignment, shapes.smoothness], saturate_below = 0.05 }")
    assert len(rows) == 2 and all(r["reward_mean"] == r["reward_mean"] for r in rows)
    for row in rows:  # the reward is kept beside the curriculum reward: two heads, summed
        assert abs(row["self_paced_weight/0"] + row["self_paced_weight/1"] - 1.0) < 1e-5
        assert row["joint_weight/0"] == row["joint_weight/1"] == 1.0
