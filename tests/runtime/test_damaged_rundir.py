"""Damaged run folders and unwritable disks: a warning or one clear line, never a traceback or a job
wedged on every rerun. Status files are versioned and validated (vpolang/status.py); a damaged one is
"not done"; a full or read-only disk fails the job naming the path and leaves no temporary behind."""
from __future__ import annotations

import errno
import functools
import json
import os
from pathlib import Path

import pytest

from runtime import api, registry
from runtime.main import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, run_job
from runtime.rundir import RunDir
from vpolang.plan import save_plan
from vpolang.report import NotARun
from vpolang.report.collect import collect_run
from vpolang.status import STATUS_VERSION

from . import toy
from .conftest import chain, run_toy


@pytest.fixture
def planned(tmp_path, monkeypatch):
    for kind in ("sft", "grpo", "dpo"):
        monkeypatch.setitem(registry.TRAINERS, kind, toy.run)
    plan = chain(tmp_path / "toy.vpo")
    save_plan(plan, tmp_path / "plan.json")
    return plan, tmp_path / "plan.json", RunDir(tmp_path / "run")


def entry(plan_path: Path, run: RunDir, job: str = "a") -> int:
    return run_job(plan_path, job, run.root, handle_signals=False)


def damage(run: RunDir, plan, text: str, job: str = "a") -> Path:
    folder = run.job(plan.job(job))
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.status_path.write_text(text)
    return folder.status_path


DAMAGED = {"a list": "[]", "not JSON": "{\"state\": ", "a wrong type": '{"state": "done", "attempts": "x"}',
           "an unknown state": '{"state": "finished"}', "a newer version": '{"schema_version": "9.0"}'}


@pytest.mark.parametrize("text", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_status_is_not_done_with_a_warning_and_the_job_runs_and_rewrites_it(planned, text, capsys):
    plan, path, run = planned
    status_path = damage(run, plan, text)
    assert not run.is_done(plan.job("a"))
    assert f"warning: {status_path} is damaged" in capsys.readouterr().err
    assert entry(path, run) == EXIT_OK  # not failed on every rerun
    status = json.loads(status_path.read_text())
    assert status["state"] == "done" and status["attempts"] == 1 and status["schema_version"] == STATUS_VERSION
    assert run.is_done(plan.job("a"))


def test_vpo_status_and_the_report_read_a_damaged_status_as_not_started(planned, capsys):
    plan, path, run = planned
    save_plan(plan, run.plan_path)
    status_path = damage(run, plan, "[]")
    assert api.show_status(run.root) == 0
    captured = capsys.readouterr()
    assert f"warning: {status_path} is damaged" in captured.err and "Traceback" not in captured.err
    assert collect_run(run.root).jobs[0].state == "not started"


@pytest.mark.parametrize("text", ["[]", "null", "not json at all", '{"schema_version": "1.0", "jobs": 7}'])
def test_a_garbage_plan_json_is_one_line_for_vpo_status_and_the_report(planned, capsys, text):
    _, _, run = planned
    run.root.mkdir(parents=True)
    run.plan_path.write_text(text)
    assert api.show_status(run.root) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run.plan_path}: cannot read the plan: ") and err.count("\n") == 1
    with pytest.raises(NotARun):
        collect_run(run.root)


def _raise_enospc(path, *args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_a_full_disk_fails_the_job_in_one_line_and_leaves_no_temporary(planned, monkeypatch, capsys):
    plan, path, run = planned
    import torch

    monkeypatch.setattr(torch, "save", lambda obj, path, *a, **k: _raise_enospc(path))  # the step-4 checkpoint
    assert entry(path, run) == EXIT_FAILED
    folder = run.job(plan.job("a"))
    status = folder.read_status()
    temp = next(folder.checkpoints.glob(".tmp-step-00000004-*"), None)
    assert status["state"] == "failed" and temp is None  # not "running", and no .tmp-step-* left
    state_file = f"{folder.checkpoints}/.tmp-step-00000004-{os.getpid()}/state.pt"
    assert status["error"] == f"stage `a` (toy.vpo:3:1): cannot write {state_file}: no space left on device"
    assert capsys.readouterr().err == f"error: {status['error']}\n"  # one line, no traceback


def test_a_disk_too_full_to_record_the_failure_still_ends_in_one_line(planned, monkeypatch, capsys):
    plan, path, run = planned
    import torch

    import vpolang.status

    monkeypatch.setattr(torch, "save", lambda obj, path, *a, **k: _raise_enospc(path))
    real = vpolang.status.write_text

    def full_after_start(target, text):
        if '"state": "running"' not in text:
            _raise_enospc(target)
        real(target, text)

    monkeypatch.setattr(vpolang.status, "write_text", full_after_start)
    assert entry(path, run) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "no space left on device" in err and "Traceback" not in err
    assert f"(not recorded in {run.job(plan.job('a')).status_path}: cannot write" in err


def _read_only_under(monkeypatch, root: Path):
    """What a read-only mount does (we run as root, so a chmod'ed folder would still be writable)."""
    real_mkdir, real_open = Path.mkdir, Path.open

    def refuse(path: Path):
        if str(path).startswith(str(root)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def mkdir(self, *args, **kwargs):
        refuse(self)
        return real_mkdir(self, *args, **kwargs)

    def open_(self, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            refuse(self)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(Path, "open", open_)


def test_a_read_only_run_directory_is_one_line_for_vpo_run(planned, monkeypatch, capsys):
    plan, _, run = planned
    _read_only_under(monkeypatch, run.root)
    assert api.run_plan(plan, run_dir=run.root, progress="plain") == api.EXIT_FAILED
    assert capsys.readouterr().err == f"error: cannot write {run.root}: read-only file system\n"


def test_a_read_only_run_directory_is_one_line_for_the_job(planned, monkeypatch, capsys):
    plan, path, run = planned
    _read_only_under(monkeypatch, run.root)
    assert entry(path, run) == EXIT_FAILED
    folder = run.job(plan.job("a")).root
    assert capsys.readouterr().err == f"error: stage `a` (toy.vpo:3:1): cannot write {folder}: read-only file system\n"


def test_a_checkpoint_fallback_is_shown_in_the_terminal_and_by_vpo_status(planned, monkeypatch, tmp_path, capsys):
    plan, path, run = planned
    monkeypatch.setitem(registry.TRAINERS, "sft", functools.partial(toy.run, stop_after=6))  # as if preempted
    assert entry(path, run) == EXIT_STOPPED
    folder = run.job(plan.job("a"))
    state = folder.checkpoints / "step-00000006" / "state.pt"
    state.write_bytes(state.read_bytes()[:-100])  # the newest checkpoint is truncated

    out = run_toy(plan, run.root, "--only", "a")  # `vpo run`, its job in a process of its own
    assert out.returncode == 0, out.stderr
    assert "a: warning: checkpoint step-00000006 is damaged (state.pt is truncated" in out.stderr
    assert "resumed from checkpoint at step 4" in folder.log_path.read_text()
    capsys.readouterr()
    assert api.show_status(run.root) == 0
    assert "a: warning: checkpoint step-00000006 is damaged" in capsys.readouterr().out
