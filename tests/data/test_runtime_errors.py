"""At run time, bad data and endless data generation stop the job at its recipe line: data that was not
on the planning machine (a cluster path) fails naming the stage's span and the data file; generating a
shapes set honours its bound and a stop request (Ctrl-C, preemption) before it starts and between clips."""
from __future__ import annotations

import json
import threading
import time

import pytest

from runtime.errors import JobError, StopRequested
from runtime.main import EXIT_FAILED, EXIT_STOPPED, run_job
from runtime.rundir import RunDir
from runtime.shapes import data as shapes_data
from runtime.shapes.world import prompts as shapes_prompts
from vpolang.plan import save_plan
from vpolang.planning import build_plan
from vpolang.schema.entities import MAX_SHAPES_PROMPTS, MAX_SHAPES_VIDEOS


def planned(tmp_path, data: str):
    recipe = tmp_path / "recipe.vpo"
    recipe.write_text("vpo 0.1\nuse std.shapes\n\nstage sft = sft(shapes.tiny_dit) {\n"
                      f"  data  = {data}\n  steps = 2\n  batch = 2\n  lr    = 1e-4\n}}\n")
    result, plan = build_plan(recipe, {}, None)
    assert plan is not None, [d.message for d in result.diagnostics]
    save_plan(plan, tmp_path / "plan.json")
    return plan


def status(tmp_path, plan) -> dict:
    return json.loads(RunDir(tmp_path / "run").job(plan.job("sft")).status_path.read_text())


def test_a_bad_video_found_at_run_time_names_the_recipe_line_and_the_file(tmp_path, capsys):
    plan = planned(tmp_path, 'videos("data/clips/*.mp4")')  # not here when planned: a cluster path
    clips = tmp_path / "data" / "clips"
    clips.mkdir(parents=True)
    (clips / "a.mp4").write_text("<html>404</html>")
    (clips / "a.txt").write_text("a red circle moving left")
    assert run_job(tmp_path / "plan.json", "sft", tmp_path / "run", handle_signals=False) == EXIT_FAILED
    error = status(tmp_path, plan)["error"]
    assert error.startswith(f"stage `sft` ({tmp_path / 'recipe.vpo'}:4:1): ")
    assert f"{clips / 'a.mp4'}: cannot open video" in error
    assert error in capsys.readouterr().err


def test_a_missing_prompts_file_at_run_time_names_the_recipe_line(tmp_path):
    recipe = tmp_path / "recipe.vpo"
    recipe.write_text('vpo 0.1\nuse std.shapes\n\nstage rl = grpo(shapes.tiny_dit) {\n'
                      '  prompts = prompts("data/p.txt")\n  reward = shapes.alignment\n  kl = 0.01\n'
                      '  group_size = 2\n  batch = 2\n  steps = 1\n  lr = 1e-4\n}\n')
    result, plan = build_plan(recipe, {}, None)
    assert plan is not None, [d.message for d in result.diagnostics]
    save_plan(plan, tmp_path / "plan.json")
    assert run_job(tmp_path / "plan.json", "rl", tmp_path / "run", handle_signals=False) == EXIT_FAILED
    error = json.loads(RunDir(tmp_path / "run").job(plan.job("rl")).status_path.read_text())["error"]
    assert error == f"stage `rl` ({recipe}:4:1): {tmp_path / 'data' / 'p.txt'}: prompt file does not exist"


def test_shapes_generation_stops_between_clips_when_asked():
    calls = []

    def stop_after_three() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(StopRequested, match="after 3 of 1000"):
        shapes_data.videos(1000, should_stop=stop_after_three)
    prompts, clips = shapes_data.videos(4, seed=1, should_stop=lambda: False)
    assert clips.shape == (4, 8, 3, 16, 16) and len(prompts) == 4


def test_shapes_generation_checks_its_bound_before_any_work():
    start = time.monotonic()
    with pytest.raises(JobError, match=f"outside 1..{MAX_SHAPES_VIDEOS}"):
        shapes_data.videos(10**9)
    with pytest.raises(JobError, match="GiB, more than this machine's"):
        shapes_data.videos(MAX_SHAPES_VIDEOS, frames=64, size=512)  # 20 TB of clips
    with pytest.raises(JobError, match=f"outside 0..{MAX_SHAPES_PROMPTS}"):
        shapes_prompts(10**9)
    assert time.monotonic() - start < 2


def test_a_stop_request_during_generation_stops_the_job_at_once(tmp_path):
    """Before, the job generated every clip first (Ctrl-C was only looked at between training steps)."""
    plan = planned(tmp_path, "shapes.videos(n = 3000)")  # about a minute of rendering on one core
    stop = threading.Event()
    stop.set()
    start = time.monotonic()
    code = run_job(tmp_path / "plan.json", "sft", tmp_path / "run", handle_signals=False, stop_event=stop)
    assert code == EXIT_STOPPED and time.monotonic() - start < 15
    assert status(tmp_path, plan)["state"] == "pending"
    log = RunDir(tmp_path / "run").job(plan.job("sft")).log_path.read_text()
    assert "stopped generating shapes videos after 0 of 3000" in log
