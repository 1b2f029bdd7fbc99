"""Progress: plain lines for logs, live bars for terminals, only failures when quiet."""
from __future__ import annotations

import json

import pytest

from runtime import progress as progress_module
from runtime.progress import Progress, StepRate, summarize
from runtime.rundir import JobDir

from .conftest import toy_job


@pytest.fixture
def running(tmp_path):
    job, folder = toy_job("rl", kind="grpo", steps=100), JobDir(tmp_path / "rl")
    folder.root.mkdir()
    lines = [{"step": 10, "time": 1000.0, "loss": 0.5, "reward/mean": 0.25, "kl": 0.01, "grad_norm": 1.0},
             {"step": 20, "time": 1010.0, "loss": 0.25, "reward/mean": 0.5, "kl": 0.02, "grad_norm": 2.0}]

    def write(n):
        folder.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in lines[:n]))
    return job, folder, write


def test_summary_puts_loss_and_reward_first():
    assert summarize({"step": 3, "time": 1.0, "kl": 0.1, "grad_norm": 2.0, "loss": 0.5, "reward/mean": 0.25}) == \
        "loss 0.5 reward/mean 0.25 kl 0.1"


def test_eta_from_the_steps_seen():
    rate = StepRate()
    assert rate.eta_s("rl", 10, 1000.0, 100) is None  # one observation: no rate yet
    assert rate.eta_s("rl", 20, 1010.0, 100) == pytest.approx(80.0)
    assert rate.eta_s("rl", 20, 1010.0, None) is None


def test_plain_mode_prints_one_line_per_event(running, capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "PLAIN_STEP_EVERY_S", 0.0)
    job, folder, write = running
    with Progress("plain", total=2) as view:
        view.cached(toy_job("sft"))
        view.started(job)
        write(1)
        view.tick(job, folder)
        write(2)
        view.tick(job, folder)
        view.finished(job)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[1/2] sft: cached" and lines[1] == "[1/2] rl: running (grpo)"
    assert lines[2] == "    rl: step 10/100  loss 0.5 reward/mean 0.25 kl 0.01"
    assert lines[3] == "    rl: step 20/100 eta 80s  loss 0.25 reward/mean 0.5 kl 0.02"
    assert lines[4].startswith("[2/2] rl: done in ") and "\x1b[" not in "".join(lines)  # no colour in logs


def test_quiet_mode_prints_only_failures(running, capsys):
    job, folder, write = running
    with Progress("quiet", total=1) as view:
        view.started(job)
        write(2)
        view.tick(job, folder)
        view.failed(job, "stage `rl` (r.vpo:9:1): loss became nan at step 20", folder)
    err = capsys.readouterr().err
    assert err == f"[0/1] rl: FAILED - stage `rl` (r.vpo:9:1): loss became nan at step 20\n    log: {folder.log_path}\n"


def test_rich_mode_shows_bars_and_events(running, capsys):
    job, folder, write = running
    with Progress("rich", total=2) as view:
        view.cached(toy_job("sft"))
        view.started(job)
        write(2)
        view.tick(job, folder)
        assert view._bars.bars.tasks[1].completed == 20 and view._bars.bars.tasks[1].total == 100
        view.finished(job)
    err = capsys.readouterr().err
    assert "sft: cached" in err and "rl: done" in err and "pipeline" in err
    with pytest.raises(ValueError, match="progress must be one of"):
        Progress("loud")


def test_plain_mode_repeats_nothing_and_says_what_the_job_does_between_steps(running, capsys, monkeypatch):
    """Issue 18: the plain mode printed the same step line many times over while a step ran."""
    monkeypatch.setattr(progress_module, "PLAIN_STEP_EVERY_S", 0.0)
    job, folder, write = running
    with Progress("plain", total=1) as view:
        view.started(job)
        folder.write_activity("sampling rollouts", 0, 100)
        view.tick(job, folder)
        write(1)
        for _ in range(3):  # the job is busy: nothing new to say
            view.tick(job, folder)
        folder.write_activity("sampling rollouts", 10, 100)  # only the counts changed
        view.tick(job, folder)
        folder.write_activity("scoring rollouts", 10, 100)
        view.tick(job, folder)
        write(2)
        view.tick(job, folder)
        folder.write_activity("sampling rollouts", 20, 100)  # the next step's phases: shown once already
        view.tick(job, folder)
        view.tick(job, folder)
    lines = capsys.readouterr().err.splitlines()[1:]
    assert lines == ["    rl: sampling rollouts", "    rl: step 10/100  loss 0.5 reward/mean 0.25 kl 0.01",
                     "    rl: scoring rollouts", "    rl: step 20/100 eta 80s  loss 0.25 reward/mean 0.5 kl 0.02"]


def test_rich_bar_moves_through_an_activity_without_steps(tmp_path, capsys):
    job, folder = toy_job("report"), JobDir(tmp_path / "report")  # no step recorded yet
    with Progress("rich", total=1) as view:
        view.started(job)
        folder.write_activity("pref: sampling", 64, 256)
        view.tick(job, folder)
        task = view._bars.bars.tasks[1]
        assert (task.completed, task.total, task.fields["metrics"]) == (64, 256, "pref: sampling 64/256")
        folder.write_activity("pref: sampling", 128, 256)
        view.tick(job, folder)
        assert view._bars.bars.tasks[1].completed == 128
