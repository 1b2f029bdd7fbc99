"""runtime.api, what the CLI calls: light at import, refuses what it cannot run before starting anything,
trusts no hand-edited hash, and shows a run's status."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runtime import api, registry
from runtime.main import run_job
from runtime.rundir import RunDir
from vpolang.plan import save_plan

from . import toy
from .conftest import ROOT, chain, env, toy_job, toy_plan


def test_importing_the_api_loads_no_heavy_module():
    code = ("import sys, runtime.api; print(sorted(m for m in ('torch', 'submitit', 'rich', 'numpy', 'diffusers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env())
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("kwargs, message", [
    ({"only": "nothing+"}, "no job or stage matches 'nothing'"),
    ({"executor": "kubernetes"}, "--executor must be local or slurm"),
    ({"progress": "fancy"}, "--progress must be one of auto, rich, plain, quiet"),
    ({"only": "c"}, "c needs the outputs of b, which is not done"),
])
def test_unusable_requests_are_refused_before_anything_runs(tmp_path, capsys, kwargs, message):
    plan = chain(tmp_path / "toy.vpo")
    assert api.run_plan(plan, run_dir=tmp_path / "run", **kwargs) == api.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "plan.json").exists()


def test_a_busy_run_directory_is_refused(tmp_path, capsys):
    plan = chain(tmp_path / "toy.vpo")
    with RunDir(tmp_path / "run").lock():
        assert api.run_plan(plan, run_dir=tmp_path / "run") == api.EXIT_USAGE
    assert "another `vpo run` is using" in capsys.readouterr().err


def test_executor_follows_the_placements_unless_chosen(tmp_path):
    local, slurm = toy_job("a"), toy_job("b", executor="slurm")
    assert api.choose_executor([local], None) == "local" and api.choose_executor([slurm], None) == "slurm"
    assert api.choose_executor([local, slurm], "local") == "local"
    with pytest.raises(ValueError, match="placed both locally and on Slurm"):
        api.choose_executor([local, slurm], None)


def test_a_hand_edited_job_gets_the_hash_of_what_it_now_says(tmp_path, capsys):
    plan = chain(tmp_path / "toy.vpo")
    edited = plan.model_copy(deep=True)
    edited.job("b").config.lr = 0.5  # hash left as it was
    checked = api.with_verified_hashes(edited)
    assert checked.job("a").hash == plan.job("a").hash
    assert checked.job("b").hash != plan.job("b").hash and checked.job("c").hash != plan.job("c").hash
    assert "job b does not match the hash recorded in its plan" in capsys.readouterr().err
    assert api.with_verified_hashes(plan).jobs == plan.jobs


def test_status_table_shows_every_job_and_the_errors(tmp_path, capsys, monkeypatch):
    plan = chain(tmp_path / "toy.vpo", a={"steps": 5}, d={"lr": 100.0})
    save_plan(plan, tmp_path / "run" / "plan.json")
    monkeypatch.setitem(registry.TRAINERS, "sft", toy.run)
    for job_id in ("a", "d"):
        run_job(tmp_path / "run" / "plan.json", job_id, tmp_path / "run", handle_signals=False)
    b = RunDir(tmp_path / "run").job(plan.job("b"))
    b.root.mkdir(parents=True)
    b.slurm_path.write_text(json.dumps({"job_id": "4242", "folder": "x"}))
    capsys.readouterr()

    assert api.show_status(tmp_path / "run") == 0
    out = capsys.readouterr().out
    row = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert " done " in row["a"] and plan.job("a").hash[:8] in row["a"] and "step 5" in row["a"]
    assert " failed " in row["d"] and "pending (slurm 4242)" in row["b"] and " pending " in row["c"]
    assert "d: stage `d` (toy.vpo:18:1): loss became inf at step 9" in out

    assert api.show_status(tmp_path / "nowhere") == 1
    assert "is not a run directory" in capsys.readouterr().err
