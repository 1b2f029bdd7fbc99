"""The run directory: stable default location, content-addressed job folders, the run lock."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.rundir import JobDir, RunDir, RunDirBusy, default_run_dir

from .conftest import chain


def test_default_run_dir_is_stable_per_recipe_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = chain(Path("toy.vpo"))
    first = default_run_dir(plan)
    assert first.parent == Path("runs") and first.name.startswith("toy-") and len(first.name) == len("toy-") + 8
    assert default_run_dir(chain(tmp_path / "toy.vpo", a={"lr": 0.2})) == first  # same file, other plan
    assert default_run_dir(chain(tmp_path / "other" / "toy.vpo")) != first


def test_job_folders_are_keyed_by_hash_and_done_needs_the_outputs(tmp_path):
    plan = chain(tmp_path / "toy.vpo")
    changed = chain(tmp_path / "toy.vpo", b={"lr": 0.1})
    run = RunDir(tmp_path / "run")
    job, job2 = plan.job("b"), changed.job("b")
    assert run.job(job).root != run.job(job2).root
    assert run.job(plan.job("c")).root != run.job(changed.job("c")).root  # downstream of a change moves too
    assert run.job(plan.job("a")).root == run.job(changed.job("a")).root

    folder = run.job(job)
    folder.root.mkdir(parents=True)
    folder.write_status(state="done", hash=job.hash)
    assert not run.is_done(job)  # its output is missing
    folder.artifact("policy").mkdir(parents=True)
    assert run.is_done(job) and not run.is_done(job2)
    with pytest.raises(ValueError):
        folder.write_status(state="finished")


def test_retire_sets_a_folder_aside_without_losing_it(tmp_path):
    plan = chain(tmp_path / "toy.vpo")
    run = RunDir(tmp_path / "run")
    folder = run.job(plan.job("a"))
    folder.root.mkdir(parents=True)
    (folder.root / "log.txt").write_text("old\n")
    aside = run.retire(plan.job("a"))
    assert not folder.root.exists() and (aside / "log.txt").read_text() == "old\n"
    assert ".retired-" in aside.name and run.retire(plan.job("a")) is None


def test_last_metrics_skips_a_record_being_written(tmp_path):
    folder = JobDir(tmp_path)
    folder.metrics_path.write_text(json.dumps({"step": 1, "loss": 2.0}) + "\n" + '{"step": 2, "lo')
    assert folder.last_metrics() == {"step": 1, "loss": 2.0}
    assert JobDir(tmp_path / "nothing").last_metrics() is None


def test_one_run_at_a_time_per_directory(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        with pytest.raises(RunDirBusy, match="another `vpo run` is using"):
            with RunDir(tmp_path / "run").lock():
                pass
    with run.lock():  # released
        pass
