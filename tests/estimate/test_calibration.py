"""The planner's calibration constants come from the committed GPU measurements, and after calibration
`vpo plan` predicts the trainer's measured step times (H100, Wan2.1-1.3B, three clip sizes)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vpolang.estimate import calibration as cal

ROOT = Path(__file__).resolve().parents[2]
RESULTS = {14_040: "gpu_trainer_overhead.json", 7_800: "gpu_trainer_overhead_480x832x17.json",
           6_480: "gpu_trainer_overhead_320x576x33.json"}


def result(tokens: int) -> dict:
    return json.loads((ROOT / "bench" / "results" / RESULTS[tokens]).read_text())


@pytest.mark.parametrize("tokens", sorted(RESULTS))
def test_trainer_steps_are_the_recorded_measurements(tokens):
    measured, planned = cal.TRAINER_STEPS[tokens]
    record = result(tokens)
    assert measured == pytest.approx(record["vpo_sft_step_s"], abs=5e-5)
    assert planned == pytest.approx(record["planned_step_s"], abs=5e-5)


@pytest.mark.parametrize("tokens", sorted(RESULTS))
def test_plan_predicts_the_measured_trainer_step(tmp_path, tokens):
    sys.path.insert(0, str(ROOT / "bench"))
    from gpu_trainer_overhead import RECIPE

    args = result(tokens)["args"]
    h, w = map(int, args["size"].split("x"))
    recipe = tmp_path / "sft.vpo"
    recipe.write_text(RECIPE.format(path=tmp_path / "wan", videos=tmp_path / "v", frames=args["frames"], h=h, w=w,
                                    steps=args["steps"]))
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", "plan", str(recipe), "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    predicted = json.loads(out.stdout)["jobs"][0]["estimate"]["step_time_s"]
    assert predicted == pytest.approx(result(tokens)["vpo_sft_step_s"], rel=0.05)  # the issue asks for 20%
