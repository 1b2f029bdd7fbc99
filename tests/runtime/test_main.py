"""The job entry, in this process: status records, resume after a stop, damaged checkpoints, failures that
name the recipe line, refusals."""
from __future__ import annotations

import functools
import json
import math

import pytest

from runtime import registry
from runtime.context import JobContext
from runtime.errors import JobError
from runtime.main import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE, run_job
from runtime.rundir import RunDir
from vpolang.plan import save_plan

from . import toy
from .conftest import assert_same_weights, chain, weights


@pytest.fixture
def toy_trainers(monkeypatch):
    for kind in ("sft", "grpo", "dpo"):
        monkeypatch.setitem(registry.TRAINERS, kind, toy.run)


@pytest.fixture
def planned(tmp_path, toy_trainers):
    def write(**per_job):
        plan = chain(tmp_path / "toy.vpo", **per_job)
        path = tmp_path / f"plan-{len(list(tmp_path.glob('plan-*')))}.json"
        save_plan(plan, path)
        return plan, path
    return write


def entry(plan_path, job_id, run_dir):
    return run_job(plan_path, job_id, run_dir, handle_signals=False)


def test_a_finished_job_is_recorded_done_with_its_outputs(planned, tmp_path):
    plan, path = planned()
    assert entry(path, "a", tmp_path / "run") == EXIT_OK
    run = RunDir(tmp_path / "run")
    folder = run.job(plan.job("a"))
    status = json.loads(folder.status_path.read_text())
    assert status["state"] == "done" and status["attempts"] == 1 and status["hash"] == plan.job("a").hash
    assert status["finished"] >= status["started"] and status["span"] == "toy.vpo:3:1"
    assert run.current("a") == folder and run.is_done(plan.job("a"))
    records = [json.loads(line) for line in folder.metrics_path.read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 13)) and all(math.isfinite(r["loss"]) for r in records)
    assert [p.name for p in folder.checkpoints.iterdir()] and (folder.artifact("policy") / "weights.pt").exists()


def test_stop_then_damaged_checkpoint_then_resume_equals_an_uninterrupted_run(planned, tmp_path, monkeypatch):
    plan, path = planned()
    assert entry(path, "a", tmp_path / "straight") == EXIT_OK
    expected = weights(RunDir(tmp_path / "straight").job(plan.job("a")).root)

    monkeypatch.setitem(registry.TRAINERS, "sft", functools.partial(toy.run, stop_after=6))  # as if preempted
    assert entry(path, "a", tmp_path / "run") == EXIT_STOPPED
    folder = RunDir(tmp_path / "run").job(plan.job("a"))
    status = json.loads(folder.status_path.read_text())
    assert status["state"] == "pending" and status["stop_reason"] == "preempted"
    assert sorted(p.name for p in folder.checkpoints.iterdir()) == ["step-00000004", "step-00000006"]

    state = folder.checkpoints / "step-00000006" / "state.pt"
    state.write_bytes(state.read_bytes()[:-100])  # the newest checkpoint is truncated
    monkeypatch.setitem(registry.TRAINERS, "sft", toy.run)
    assert entry(path, "a", tmp_path / "run") == EXIT_OK
    log = folder.log_path.read_text()
    assert "checkpoint step-00000006 is damaged" in log and "resumed from checkpoint at step 4" in log
    assert json.loads(folder.status_path.read_text())["attempts"] == 2
    assert_same_weights(weights(folder.root), expected)


def test_nan_loss_fails_naming_the_recipe_line_and_keeps_the_last_checkpoint(planned, tmp_path, capsys):
    plan, path = planned(a={"lr": 100.0})  # diverges: the loss is infinite at step 9
    assert entry(path, "a", tmp_path / "run") == EXIT_FAILED
    folder = RunDir(tmp_path / "run").job(plan.job("a"))
    status = json.loads(folder.status_path.read_text())
    assert status["state"] == "failed"
    assert status["error"] == ("stage `a` (toy.vpo:3:1): loss became inf at step 9; the last good checkpoint "
                               "(step 8) is kept. Lower `lr` or raise `grad_clip`.")
    err = capsys.readouterr().err
    assert err == f"error: {status['error']}\n"  # one line, no traceback
    assert folder.checkpoints.joinpath("step-00000008").is_dir() and not folder.artifact("policy").exists()


def test_check_finite_keeps_the_checkpoint_and_says_so(planned, tmp_path):
    plan, _ = planned()
    run = RunDir(tmp_path / "run")
    ctx = JobContext(plan, plan.job("b"), run, run.job(plan.job("b")))
    ctx.checkpoints.save(4, {"w": 1})
    ctx.check_finite(0.5, 5)
    with pytest.raises(JobError) as err:
        ctx.check_finite(float("inf"), 6)
    # no location here: runtime/main.py adds the recipe line, once, to every JobError
    assert str(err.value).startswith("loss became inf at step 6; the last good checkpoint (step 4) is kept")


def test_unexpected_error_keeps_its_traceback_in_the_log(planned, tmp_path, monkeypatch, capsys):
    def broken(ctx):
        raise ZeroDivisionError("division by zero in the trainer")

    monkeypatch.setitem(registry.TRAINERS, "sft", broken)
    plan, path = planned()
    assert entry(path, "a", tmp_path / "run") == EXIT_FAILED
    folder = RunDir(tmp_path / "run").job(plan.job("a"))
    err = capsys.readouterr().err
    assert "error: stage `a` (toy.vpo:3:1): ZeroDivisionError: division by zero" in err
    assert "Traceback" not in err and str(folder.log_path) in err
    assert "Traceback (most recent call last)" in folder.log_path.read_text()


def test_a_trainer_that_writes_no_output_fails(planned, tmp_path, monkeypatch):
    monkeypatch.setitem(registry.TRAINERS, "sft", lambda ctx: None)
    plan, path = planned()
    assert entry(path, "a", tmp_path / "run") == EXIT_FAILED
    status = RunDir(tmp_path / "run").job(plan.job("a")).read_status()
    assert "returned without writing policy" in status["error"]


def test_missing_input_names_the_upstream_job(planned, tmp_path, capsys):
    plan, path = planned()
    assert entry(path, "b", tmp_path / "run") == EXIT_FAILED
    assert "input `init0` (a/policy) is missing" in capsys.readouterr().err


def test_incompatible_plan_schema_is_refused(planned, tmp_path, capsys):
    plan, path = planned()
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "schema_version": "5.0"}))
    assert entry(path, "a", tmp_path / "run") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "schema_version 5.0 cannot be read by this vpo" in err and "vpo plan" in err
    _, good = planned()
    assert entry(good, "zz", tmp_path / "run") == EXIT_USAGE
    assert "has no job 'zz'" in capsys.readouterr().err


def test_several_processes_for_a_single_process_trainer_are_refused(planned, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(registry.TRAINERS, "sft", lambda ctx: None)
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    plan, path = planned()
    assert entry(path, "a", tmp_path / "run") == EXIT_FAILED
    assert "runs in one process, but this job was started as 2" in capsys.readouterr().err
