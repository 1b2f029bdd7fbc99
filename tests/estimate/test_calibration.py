"""The planner's calibration constants come from the committed GPU measurements, and after calibration
`vpo plan` predicts the step times vpo's SFT, DPO and GRPO trainers were measured at on an H100 (Wan2.1-1.3B
architecture, two clip sizes; bench/results/gpu_trainers.json and gpu_trainer_overhead*.json)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vpolang.estimate import calibration as cal

ROOT = Path(__file__).resolve().parents[2]
OVERHEAD = {14_040: "gpu_trainer_overhead.json", 6_480: "gpu_trainer_overhead_320x576x33.json"}


def results(name: str) -> dict:
    return json.loads((ROOT / "bench" / "results" / name).read_text())


def trainers() -> dict:
    return results("gpu_trainers.json")["results"]


@pytest.mark.parametrize("tokens", sorted(OVERHEAD))
def test_trainer_steps_are_the_recorded_measurements(tokens):
    measured, planned, optimizer = cal.TRAINER_STEPS[tokens]
    record = results(OVERHEAD[tokens])
    assert measured == pytest.approx(record["vpo_sft_step_s"], abs=5e-5)
    assert planned == pytest.approx(record["planned_step_s"], abs=5e-5)
    assert optimizer == pytest.approx(results("gpu_optimizer_step.json")["results"]["torch-bf16"]["step"], abs=1e-4)


def test_fixed_costs_are_the_recorded_measurements():
    steps = results("gpu_optimizer_step.json")["results"]
    assert cal.OPTIMIZER_STEP_S == pytest.approx(steps["torch-master"]["step"], abs=1e-4)
    assert cal.ZERO_OPTIMIZER_STEP_S == pytest.approx(steps["zero2"]["step"], abs=1e-4)
    measured = trainers()
    assert cal.TRAINER_STEPS[7_800][0] == pytest.approx(measured["sft-17"]["step_s"], abs=1e-4)
    floor_train = (measured["sft-small"]["step_s"] - cal.OPTIMIZER_STEP_S) / cal.WAN_LAYERS
    assert cal.HOST_FLOOR_TRAIN_S == pytest.approx(floor_train, rel=1e-3)
    floor_forward = (measured["dpo-small"]["step_s"] - 2 * measured["sft-small"]["step_s"] + cal.OPTIMIZER_STEP_S) / 2
    assert cal.HOST_FLOOR_FORWARD_S * cal.WAN_LAYERS == pytest.approx(floor_forward, rel=1e-3)


def planned_step(tmp_path: Path, name: str) -> float:
    sys.path.insert(0, str(ROOT / "bench"))
    from gpu_trainers import recipe_text

    recipe = tmp_path / f"{name}.vpo"
    recipe.write_text(recipe_text(tmp_path, name, 8))
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", "plan", str(recipe), "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return next(j for j in json.loads(out.stdout)["jobs"] if j["id"] == "job")["estimate"]["step_time_s"]


# sft-small and dpo-small fix the host floors, and sft-17 the 7,800-token slowdown point: the others are
# predictions the constants were not fitted to (measured: grpo-small +0.6%, grpo-17 -5%, dpo-17 -5%)
@pytest.mark.parametrize("name", ["sft-17", "sft-small", "dpo-17", "dpo-small", "dpo-17-decoupled", "grpo-17",
                                  "grpo-small"])
def test_plan_predicts_the_measured_trainer_step(tmp_path, name):
    assert planned_step(tmp_path, name) == pytest.approx(trainers()[name]["step_s"], rel=0.08)  # the issue: 20%
