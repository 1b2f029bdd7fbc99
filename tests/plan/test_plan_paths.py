"""A plan.json cannot make `vpo run` write outside its run directory (issue 17, item 2).

`load_plan` holds ids and names to the language's identifier grammar, and every folder the runtime
derives from plan data (job folders, artifacts, inputs, `current`, the default run directory) must
resolve inside the run directory. These tests use only names that exist on main (the refusals are
ValueErrors), so on main they fail by the plan loading and the paths escaping."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.api import run_plan
from runtime.context import JobContext
from runtime.rundir import JobDir, RunDir, default_run_dir
from tests.runtime.conftest import ROOT, chain, env
from vpolang.parser import _lark
from vpolang.plan import ArtifactRef, load_plan

HOSTILE = ["../outside", "../../outside", "ABS", "/", "a\x00b", "a/../../outside", "..", ""]


def hostile(value: str, tmp_path) -> str:
    return f"{tmp_path}/abs-outside" if value == "ABS" else value


def plan_data(tmp_path) -> dict:
    """a -> b -> c and d, as the compiler would write it."""
    return json.loads(chain(tmp_path / "toy.vpo").to_json())


def rename_job(data: dict, old: str, new: str) -> None:
    """Renames a job everywhere it is named, so that only the new name's grammar is at stake."""
    for job in data["jobs"]:
        job["id"] = new if job["id"] == old else job["id"]
        job["stage"] = new if job["stage"] == old else job["stage"]
        job["depends_on"] = [new if d == old else d for d in job["depends_on"]]
        for ref in job["inputs"].values():
            ref["job"] = new if ref["job"] == old else ref["job"]


def _b(data):
    return next(j for j in data["jobs"] if j["id"] == "b")


MUTATIONS = {
    "job id": lambda d, v: rename_job(d, "a", v),
    "stage": lambda d, v: d["jobs"][0].update(stage=v),
    "dependency": lambda d, v: _b(d).update(depends_on=[v]),
    "input job": lambda d, v: _b(d)["inputs"]["init0"].update(job=v),
    "input artifact": lambda d, v: _b(d)["inputs"]["init0"].update(name=v),
    "input slot": lambda d, v: _b(d).update(inputs={v: _b(d)["inputs"]["init0"]}),
    "output": lambda d, v: d["jobs"][0].update(outputs=[v]),
    "hash": lambda d, v: d["jobs"][0].update(hash=v + "0" * 48),
    "recipe name": lambda d, v: d["recipe"].update(name=v),
}


def tree(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("where", MUTATIONS)
@pytest.mark.parametrize("value", HOSTILE)
def test_load_plan_refuses_a_hostile_name_in_one_line(tmp_path, where, value):
    data = plan_data(tmp_path)
    MUTATIONS[where](data, hostile(value, tmp_path))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as refused:
        load_plan(path)
    message = str(refused.value)
    assert "\n" not in message and "\x00" not in message, message
    assert re.search(r"is not (a name|a dotted name|an input slot|64 lower-case hex)", message), message


def test_the_names_the_compiler_writes_load(tmp_path):
    data = plan_data(tmp_path)
    rename_job(data, "a", "pref.pairs.on_policy_2.generate")
    _b(data)["inputs"] = {"policy:pref.pairs.on_policy_2.generate": _b(data)["inputs"]["init0"]}
    data["recipe"]["name"] = "ipo_v2"
    (tmp_path / "plan.json").write_text(json.dumps(data))
    assert load_plan(tmp_path / "plan.json").job("pref.pairs.on_policy_2.generate").stage == \
        "pref.pairs.on_policy_2.generate"


def test_a_dependency_on_no_job_and_a_garbage_plan_are_refused_in_one_line(tmp_path):
    data = plan_data(tmp_path)
    _b(data)["depends_on"] = ["nowhere"]
    (tmp_path / "plan.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"^plan: job b needs 'nowhere', which is not a job of this plan$"):
        load_plan(tmp_path / "plan.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_plan(tmp_path / "list.json")


def test_the_language_name_grammar_is_the_parser_s():
    from vpolang.safety import NAME

    assert NAME == _lark().get_terminal("NAME").pattern.value


@pytest.mark.parametrize("where,value", [("job id", "../../outside"), ("recipe name", "../../outside"),
                                         ("dependency", "ABS"), ("input job", "../outside"),
                                         ("input artifact", "../../../outside")])
def test_vpo_run_refuses_the_plan_before_writing_anything(tmp_path, where, value):
    work = tmp_path / "work"
    work.mkdir()
    data = plan_data(tmp_path)
    MUTATIONS[where](data, hostile(value, tmp_path))
    (tmp_path / "plan.json").write_text(json.dumps(data))
    before = tree(tmp_path)
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", "run", str(tmp_path / "plan.json"), "--run-dir",
                          str(work / "run"), "--progress", "plain"], capture_output=True, text=True,
                         cwd=work, env=env(True), timeout=120)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith(f"error: cannot read plan {tmp_path / 'plan.json'}: ") and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert tree(tmp_path) == before  # no run directory, nothing beside it or above it


def test_a_job_process_refuses_the_plan_with_a_usage_error(tmp_path):
    data = plan_data(tmp_path)
    rename_job(data, "a", "../../outside")
    (tmp_path / "plan.json").write_text(json.dumps(data))
    before = tree(tmp_path)
    out = subprocess.run([sys.executable, "-m", "runtime.main", "--plan", str(tmp_path / "plan.json"), "--job",
                          "../../outside", "--run-dir", str(tmp_path / "run")], capture_output=True, text=True,
                         cwd=ROOT, env=env(True), timeout=120)
    assert out.returncode == 2 and "job id '../../outside' is not a dotted name" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and tree(tmp_path) == before


# ---- the runtime's own check: plans built in-process skip load_plan ----------------------------------
def unchecked(plan, job_id: str, **update):
    """The plan with one job changed without validation (as a caller of the API could)."""
    jobs = [job.model_copy(update=update) if job.id == job_id else job for job in plan.jobs]
    return plan.model_copy(update={"jobs": jobs})


@pytest.mark.parametrize("value", ["../../outside", "ABS", "a/../../../outside"])
def test_job_folders_must_stay_inside_the_run_directory(tmp_path, value):
    plan = unchecked(chain(tmp_path / "toy.vpo"), "d", id=hostile(value, tmp_path))
    run = RunDir(tmp_path / "work" / "run")
    with pytest.raises(ValueError, match="lies outside"):
        run.job(plan.jobs[-1])
    with pytest.raises(ValueError, match="lies outside"):
        run.mark_current(plan.jobs[-1])
    before = tree(tmp_path)
    assert run_plan(plan, run_dir=run.root, progress="quiet") == 2
    assert tree(tmp_path) == before


def test_artifacts_and_inputs_must_stay_inside_their_folders(tmp_path):
    plan = chain(tmp_path / "toy.vpo")
    run = RunDir(tmp_path / "run")
    with pytest.raises(ValueError, match="lies outside"):
        JobDir(tmp_path / "run" / "a" / "0").artifact("../../../outside")
    b = plan.job("b").model_copy(update={"inputs": {"init0": ArtifactRef.model_construct(job="a", name="../../x")}})
    ctx = JobContext(plan, b, run, run.job(b))
    with pytest.raises(ValueError, match="lies outside"):
        ctx.input_path("init0")


def test_a_symlink_out_of_the_run_directory_is_not_followed(tmp_path):
    plan = chain(tmp_path / "toy.vpo")
    (tmp_path / "run").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "run" / "a")
    with pytest.raises(ValueError, match="lies outside"):
        RunDir(tmp_path / "run").job(plan.job("a"))


def test_a_job_started_on_a_linked_out_folder_fails_in_one_line(tmp_path, capsys):
    from runtime.main import EXIT_USAGE, run_job
    plan = chain(tmp_path / "toy.vpo")
    (tmp_path / "run").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "run" / "a")
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan.to_json())
    assert run_job(plan_path, "a", tmp_path / "run", handle_signals=False) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "lies outside" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any((tmp_path / "elsewhere").iterdir())


def test_a_damaged_current_file_names_no_folder(tmp_path):
    (tmp_path / "run" / "a").mkdir(parents=True)
    (tmp_path / "run" / "a" / "current").write_text("../../../etc\n")
    assert RunDir(tmp_path / "run").current("a") is None


def test_the_default_run_directory_stays_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = chain(tmp_path / "toy.vpo")
    assert default_run_dir(plan).parent == Path("runs")
    bad = plan.model_copy(update={"recipe": plan.recipe.model_copy(update={"name": "../../outside"})})
    with pytest.raises(ValueError, match="lies outside"):
        default_run_dir(bad)
    before = tree(tmp_path)
    assert run_plan(bad, progress="quiet") == 2
    assert tree(tmp_path) == before


def test_a_dependency_cycle_is_refused_in_one_line(tmp_path):
    data = plan_data(tmp_path)
    data["jobs"][0]["depends_on"] = ["c"]  # a -> b -> c -> a
    (tmp_path / "plan.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"^plan: dependency cycle through job a$"):
        load_plan(tmp_path / "plan.json")
