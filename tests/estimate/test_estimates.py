"""Estimates against hand computations and measurements, and the plan's fit and batch checks."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vpolang.cli import app
from vpolang.estimate.jobs import BatchError, per_gpu_batch
from vpolang.estimate.model import forward_flops, tokens

WAN = {"params": 1_420_000_000, "layers": 30, "hidden": 1536, "heads": 12, "ffn": 8960, "patch": [1, 2, 2],
       "vae_stride": [4, 8, 8], "text_len": 512}


def test_tokens_and_flops_by_hand():
    # 33 frames -> 1 + 32/4 = 9 latent frames; 480/8/2 = 30 and 832/8/2 = 52 patches
    assert tokens(WAN, 33, [480, 832]) == 9 * 30 * 52 == 14040
    n = 14040
    linear = 2 * 30 * (6 * 1536**2 + 2 * 1536 * 8960) * n + 2 * 30 * 2 * 1536**2 * 512
    attention = 4 * 30 * n * n * 1536
    cross = 4 * 30 * n * 512 * 1536
    assert forward_flops(WAN, n) == linear + attention + cross
    # torch.utils.flop_counter measured 72.93 TFLOP per forward on the H100 (bench/results)
    assert forward_flops(WAN, n) / 1e12 == pytest.approx(72.93, rel=0.01)


def test_batch_solver_shows_the_arithmetic():
    assert per_gpu_batch("dpo", {"batch": 32}, 16) == 2
    with pytest.raises(BatchError, match="global batch 30 is not divisible by 8 GPUs; use 32 or 24"):
        per_gpu_batch("dpo", {"batch": 30}, 8)
    assert per_gpu_batch("grpo", {"batch": 8, "group_size": 8}, 32) == 2
    with pytest.raises(BatchError, match="6 videos do not split over 4 GPUs"):
        per_gpu_batch("grpo", {"batch": 3, "group_size": 2}, 4)


OVER = """vpo 0.1
use std.models

cluster box = slurm { gpu = "RTX-4090", gpus_per_node = 8 }
model base = models.wan21_t2v_1_3b { path = "w" }
dataset clips = videos("v/*.mp4")

stage pref = dpo(base) on box {
  pairs      = synthetic(clips)
  steps      = 100
  batch      = 16
  lr         = 1e-6
  resolution = 720p
  frames     = 81
  gradient_checkpointing = true
EXTRA}
"""


def plan_json(tmp_path, text, *extra):
    path = tmp_path / "r.vpo"
    path.write_text(text)
    return CliRunner().invoke(app, ["plan", str(path), "--format", "json", *extra])


def test_full_dpo_at_720p_81f_on_24gib_is_rejected_at_its_line_with_fixes(tmp_path):
    out = plan_json(tmp_path, OVER.replace("EXTRA", ""))
    assert out.exit_code == 1
    assert "error[E0302]" in out.stderr and "r.vpo:8:1" in out.stderr
    assert "GiB per GPU, more than the 24 GiB of a RTX-4090" in out.stderr
    assert "backward = decoupled" in out.stderr and "would fit" in out.stderr


def test_the_same_with_decoupled_backward_and_more_nodes_fits(tmp_path):
    out = plan_json(tmp_path, OVER.replace("EXTRA", "  backward   = decoupled\n  nodes      = 2\n  zero_stage = 3\n"))
    assert out.exit_code == 0, out.stderr
    job = json.loads(out.stdout)["jobs"][-1]
    assert job["estimate"]["peak_memory_gib"] < job["estimate"]["capacity_gib"] == pytest.approx(23.6)


def test_batch_error_is_reported_at_the_stage(tmp_path):
    text = OVER.replace("EXTRA", "  backward = decoupled\n  nodes = 3\n  zero_stage = 3\n")
    out = plan_json(tmp_path, text)
    assert out.exit_code == 1 and "E0303" in out.stderr and "global batch 16 is not divisible by 24 GPUs; use 24" in out.stderr


def test_scale_param_divides_training_gpu_hours(tmp_path):
    runner = CliRunner()
    full = json.loads(runner.invoke(app, ["plan", "examples/teleboost.vpo", "--format", "json"]).stdout)
    tenth = json.loads(runner.invoke(app, ["plan", "examples/teleboost.vpo", "--set", "scale=0.1",
                                           "--format", "json"]).stdout)
    train = lambda p: sum(j["estimate"]["gpu_hours"] for j in p["jobs"] if j["kind"] in ("sft", "grpo", "dpo"))  # noqa: E731
    assert train(tenth) == pytest.approx(train(full) / 10, rel=0.02)
    assert tenth["totals"]["cost_usd"] < full["totals"]["cost_usd"]
    rl = [j for j in full["jobs"] if j["id"] == "rl"][0]
    assert rl["estimate"]["cost_usd"] == pytest.approx(rl["estimate"]["gpu_hours"] * 2.5)  # the cluster's price


def test_budget_guard_exit_code(tmp_path):
    out = CliRunner().invoke(app, ["plan", "examples/teleboost.vpo", "--budget", "100"])
    assert out.exit_code == 3 and "budget exceeded" in out.stderr


def test_ipo_estimates_are_ordered_and_totals_add_up():
    out = json.loads(CliRunner().invoke(app, ["plan", "examples/ipo.vpo", "--format", "json"]).stdout)
    assert out["totals"]["gpu_hours"] == pytest.approx(sum(j["estimate"]["gpu_hours"] for j in out["jobs"]))
    for job in out["jobs"]:
        assert job["estimate"]["peak_memory_gib"] <= job["estimate"]["capacity_gib"]
