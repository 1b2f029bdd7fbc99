"""The estimates as `vpo plan` reports them: plan jobs through jobs.py, errors at the recipe's line,
`--set scale=0.1`, the budget guard, and an import that stays free of the GPU stack."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vpolang.cli import app
from vpolang.estimate.jobs import estimate_job
from vpolang.planning import build_plan

from .common import ROOT

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


def plan(tmp_path, text: str, *extra: str):
    path = tmp_path / "r.vpo"
    path.write_text(text)
    return CliRunner().invoke(app, ["plan", str(path), "--format", "json", *extra])


def plan_json(*args: str) -> dict:
    out = CliRunner().invoke(app, ["plan", *args, "--format", "json"])
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)


def test_full_dpo_at_720p_81f_on_24gib_is_rejected_at_its_line_with_fixes(tmp_path):
    out = plan(tmp_path, OVER.replace("EXTRA", ""))
    assert out.exit_code == 1
    assert "error[E0302]" in out.stderr and "r.vpo:8:1" in out.stderr
    assert "GiB per GPU, more than the 24 GiB of a RTX-4090" in out.stderr
    assert "would fit: sequence_parallel = 4 (" in out.stderr  # each video's tokens split over 4 GPUs


def test_the_same_with_the_suggested_sequence_parallel_fits(tmp_path):
    out = plan(tmp_path, OVER.replace("EXTRA", "  sequence_parallel = 4\n"))
    assert out.exit_code == 0, out.stderr
    job = json.loads(out.stdout)["jobs"][-1]
    assert job["estimate"]["peak_memory_gib"] < job["estimate"]["capacity_gib"]
    assert job["execution"]["sequence_parallel"] == 4 and job["execution"]["rows_per_rank"] == 8  # 16 pairs / 2 groups


def test_the_same_with_decoupled_backward_and_more_nodes_fits(tmp_path):
    out = plan(tmp_path, OVER.replace("EXTRA", "  backward   = decoupled\n  nodes      = 2\n  zero_stage = 3\n"))
    assert out.exit_code == 0, out.stderr
    job = json.loads(out.stdout)["jobs"][-1]
    estimate, block = job["estimate"], job["execution"]
    assert estimate["peak_memory_gib"] < estimate["capacity_gib"] == pytest.approx(23.6)
    assert block["checkpointing"] is True  # the recipe's choice, in the block the runtime executes
    assert (block["micro_batch"], block["grad_accum"]) == (1, 1)  # 16 pairs over 16 GPUs
    assert (block["optimizer"], block["zero_stage"]) == ("deepspeed_zero", 3)


def test_batch_and_gpu_errors_are_reported_at_the_stage(tmp_path):
    out = plan(tmp_path, OVER.replace("EXTRA", "  backward = decoupled\n  nodes = 3\n  zero_stage = 3\n"))
    assert out.exit_code == 1 and "E0303" in out.stderr
    assert "global batch 16 is not divisible by 24 GPUs; use 24" in out.stderr
    out = plan(tmp_path, OVER.replace("EXTRA", "").replace('"RTX-4090"', '"H100-80G"'))
    assert out.exit_code == 1 and "unknown GPU `H100-80G`; did you mean H100-80GB" in out.stderr


def test_scale_divides_what_grows_with_steps():
    full, tenth = plan_json("examples/teleboost.vpo"), plan_json("examples/teleboost.vpo", "--set", "scale=0.1")
    jobs = lambda p: {j["id"]: j["estimate"] for j in p["jobs"]}  # noqa: E731
    full_jobs, tenth_jobs = jobs(full), jobs(tenth)
    for job in ("sft", "rl", "pref"):  # the per-step work scales; encoding the dataset once does not
        assert tenth_jobs[job]["breakdown"]["train"] == pytest.approx(full_jobs[job]["breakdown"]["train"] / 10)
    assert tenth_jobs["sft"]["breakdown"]["vae"] == full_jobs["sft"]["breakdown"]["vae"]
    rl, rl_tenth = full_jobs["rl"]["breakdown"], tenth_jobs["rl"]["breakdown"]
    for part in ("sampling", "reference", "text"):  # GRPO: rollouts and updates per step
        assert rl_tenth[part] == pytest.approx(rl[part] / 10)
    # rewards also score the prior's samples, which stop growing once the prompt pool is exhausted
    assert rl["scoring"] / 10 < rl_tenth["scoring"] < rl["scoring"]
    # BPGO's prior samples each distinct prompt once: 200 x 8 draws exhaust the 1,000 prompts, 20 x 8 do not
    assert rl["prior"] == pytest.approx(1000 * 4 * 50 * rl["sampling"] / (200 * 64 * 50))
    assert rl_tenth["prior"] == pytest.approx(160 * 4 * 50 * rl_tenth["sampling"] / (20 * 64 * 50))
    assert tenth["totals"]["cost_usd"] < full["totals"]["cost_usd"] / 2
    assert full_jobs["rl"]["cost_usd"] == pytest.approx(full_jobs["rl"]["gpu_hours"] * 2.5)  # the cluster's price


def test_budget_guard_exit_code():
    out = CliRunner().invoke(app, ["plan", "examples/teleboost.vpo", "--budget", "100"])
    assert out.exit_code == 3 and "budget exceeded" in out.stderr


@pytest.mark.parametrize("example", ["ipo", "teleboost", "quickstart"])
def test_examples_fit_and_totals_add_up(example):
    out = plan_json(f"examples/{example}.vpo")
    assert out["totals"]["gpu_hours"] == pytest.approx(sum(j["estimate"]["gpu_hours"] for j in out["jobs"]))
    for job in out["jobs"]:
        e = job["estimate"]
        assert e["capacity_gib"] is None or e["peak_memory_gib"] <= e["capacity_gib"], job["id"]
        assert e["hours"] > 0 or job["kind"] == "synthesize"


def test_sizes_that_cannot_be_counted_are_stated():
    result, built = build_plan(ROOT / "examples" / "teleboost.vpo", {}, None)
    jobs = {job.id: job for job in built.jobs}
    sft = estimate_job(jobs["sft"], ROOT / "examples", None)
    assert sft.assumed == ["videos data/istock/*.mp4: 1000 items assumed (not countable at plan time)"]
    quick, _ = build_plan(ROOT / "examples" / "quickstart.vpo", {}, None)[1], None
    shapes = estimate_job(quick.jobs[0], ROOT / "examples", None)
    assert shapes.assumed == [] and shapes.breakdown["steps"] == 1000


def test_importing_the_estimates_pulls_in_no_heavy_module():
    code = ("import sys, vpolang.estimate\n"
            "heavy = {'torch', 'numpy', 'pydantic', 'diffusers', 'transformers'} & set(sys.modules)\n"
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
