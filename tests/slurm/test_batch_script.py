"""No recipe or plan string can inject a command into the Slurm batch script (issue 17, item 1).

submitit writes placement strings into `#SBATCH --key=value` lines; its quoting does not help there, as
a newline ends the directive and the next line runs as shell when the job starts. So the compiler
refuses such strings at the field's line, the plan refuses them in a plan.json, and the Slurm executor
refuses them again before the first submission. The scripts here are rendered by submitit itself and
run under bash with a fake `srun` (no real Slurm needed)."""
from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from submitit.slurm.slurm import _make_sbatch_string

from runtime.executors.slurm import SlurmExecutor, _Watch, slurm_parameters
from runtime.progress import Progress
from runtime.rundir import RunDir
from tests.runtime.conftest import toy_job, toy_plan
from vpolang.api import check_file
from vpolang.plan import Placement, load_plan

MARK = "PWNED"  # a file the injected commands would create in the test's folder


def hostile_values() -> list[str]:
    return [f"gpu\ntouch {MARK} #", f"gpu\r\ntouch {MARK}", f"$(touch {MARK})", f"`touch {MARK}`",
            f"gpu;touch {MARK}", f"gpu touch {MARK}", f"gpu' ; touch {MARK} '"]


# ---- check time -------------------------------------------------------------------------------------
RECIPE = """vpo 0.1
use std.shapes
cluster big = slurm {{
  partition = {partition}
  account   = {account}
  gpu       = {gpu}
  extra     = {extra}
}}
cluster here = local {{ gpu = {local_gpu} }}
stage sft = sft(shapes.tiny_dit) on big {{
  data  = shapes.videos(n = 8)
  steps = 10
  lr    = 1e-4
}}
stage again = sft(sft) on here {{
  data  = shapes.videos(n = 8)
  steps = 10
  lr    = 1e-4
}}
"""
SAFE = {"partition": '"a100,h100"', "account": '"lab-1"', "gpu": '"H100-80GB"', "extra": 'prompts("high")',
        "local_gpu": '"cpu"'}
LINES = {"partition": 4, "account": 5, "gpu": 6, "extra": 7, "local_gpu": 9}


def vpo_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def test_the_safe_recipe_checks(tmp_path):
    path = tmp_path / "safe.vpo"
    path.write_text(RECIPE.format(**SAFE))
    assert check_file(path).ok, check_file(path).diagnostics


@pytest.mark.parametrize("field", LINES)
@pytest.mark.parametrize("value", hostile_values())
def test_the_compiler_refuses_a_hostile_cluster_string_at_its_line(tmp_path, field, value):
    literal = f"prompts({vpo_string(value)})" if field == "extra" else vpo_string(value)
    path = tmp_path / "hostile.vpo"
    path.write_text(RECIPE.format(**{**SAFE, field: literal}))
    result = check_file(path)
    assert not result.ok
    here = [d for d in result.diagnostics if d.span and d.span.line == LINES[field]]
    # A newline in `extra = prompts("...")` is refused as a path (E0222) before it could be an sbatch value.
    expected = {"extra": {"E0221", "E0222"}}.get(field, {"E0220"})
    assert here and {d.code for d in here} <= expected, result.diagnostics
    assert all(d.hint and d.span.col > 1 and "\n" not in d.message for d in here)


@pytest.mark.parametrize("key,value,ok", [
    ("qos", "high", True), ("constraint", "a100&(ib|nvlink)", True), ("mail-user", "me@lab.org", True),
    ("gres", "gpu:a100:2", True), ("qos", "a&b", False), ("qos", "", False), ("comment", "two words", False),
    ("a\nb", "x", False), ("qos;x", "y", False), ("Qos", "x", False), ("", "x", False),
    ("job-name", "x", False), ("output", "/tmp/x", False), ("time", "10", False)])
def test_extra_keys_are_sbatch_options_and_values_are_plain(key, value, ok):
    from pydantic import ValidationError

    from vpolang.schema.entities import Slurm

    if ok:
        assert Slurm.model_validate({"gpu": "H100-80GB", "extra": {key: value}}).extra == {key: value}
        return
    with pytest.raises(ValidationError) as refused:
        Slurm.model_validate({"gpu": "H100-80GB", "extra": {key: value}})
    assert refused.value.errors()[0]["type"] in ("vpo_sbatch_option", "vpo_sbatch_value")


# ---- run time ---------------------------------------------------------------------------------------
@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """`srun` records its arguments; `sbatch` keeps the script it was given and answers a job id."""
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    log.mkdir()
    (bin_dir / "srun").write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > {shlex.quote(str(log / "srun.args"))}\n')
    (bin_dir / "sbatch").write_text(f'#!/bin/bash\ncp "$1" {shlex.quote(str(log / "submitted.sh"))}\n'
                                    'echo "Submitted batch job 4242"\n')
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return log


def run_script(script: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script)], cwd=cwd, capture_output=True, text=True, timeout=60)


def slurm_plan(tmp_path, **placement):
    job = toy_job("pref.pairs.on_policy_2.generate", executor="slurm")
    fields = {"executor": "slurm", "partition": "a100,h100", "account": "lab-1", "gpu": "H100-80GB",
              "gpus_per_node": 2, "time_limit_s": 3600, **placement}
    job = job.model_copy(update={"placement": Placement.model_construct(**{**Placement().model_dump(), **fields})})
    return toy_plan(tmp_path / "toy.vpo", [job])


def test_the_harness_sees_an_injection_when_nothing_refuses_it(tmp_path, fake_slurm):
    """What the checks prevent: submitit renders a newline straight into a shell line."""
    script = tmp_path / "raw.sh"
    script.write_text(_make_sbatch_string(command="true", folder=tmp_path / "s", partition=f"gpu\ntouch {MARK} #"))
    run_script(script, tmp_path)
    assert (tmp_path / MARK).exists()


def test_a_rendered_script_runs_only_srun_even_from_a_hostile_run_directory(tmp_path, fake_slurm):
    """Allowed values (a constraint expression, a partition list) and a run directory whose name is
    shell syntax reach the script quoted: bash runs srun with the folder as one argument, nothing else."""
    run_dir = tmp_path / f"run $(touch {MARK}) `touch {MARK}`; touch {MARK} '"
    extra = {"constraint": "a100&(ib|nvlink)", "qos": "high", "mail-user": "me@lab.org"}
    plan = slurm_plan(tmp_path, slurm_extra=extra)
    run = RunDir(run_dir)
    run.root.mkdir()
    run.plan_path.write_text(plan.to_json())
    import submitit

    executor = submitit.SlurmExecutor(folder=run_dir / "submitit" / "s")
    SlurmExecutor._submit(executor, run.plan_path, plan.jobs[0], run, {})
    script = (fake_slurm / "submitted.sh").read_text()
    assert "#SBATCH --partition=a100,h100\n" in script and "#SBATCH --constraint='a100&(ib|nvlink)'\n" in script
    assert "#SBATCH --job-name=vpo-pref.pairs.on_policy_2.generate\n" in script
    out = run_script(fake_slurm / "submitted.sh", tmp_path)
    assert out.returncode == 0, out.stderr
    assert not list(tmp_path.rglob(MARK))
    args = (fake_slurm / "srun.args").read_text().splitlines()
    assert args[-1] == str(run_dir / "submitit" / "s") and "-m" in args
    assert json.loads(run.job(plan.jobs[0]).slurm_path.read_text())["job_id"] == "4242"


def hostile_placements():
    for value in hostile_values():
        for field in ("partition", "account", "gpu"):
            yield field, {field: value}
        yield "extra value", {"slurm_extra": {"qos": value}}
        yield "extra key", {"slurm_extra": {value: "high"}}


@pytest.mark.parametrize("field,placement", list(hostile_placements()))
def test_the_slurm_executor_refuses_a_hostile_placement_before_submitting(tmp_path, fake_slurm, capsys, monkeypatch,
                                                                          field, placement):
    monkeypatch.setattr(_Watch, "until_done", lambda self, poll_s: 0)  # no Slurm to follow a submitted job
    plan = slurm_plan(tmp_path, **placement)
    with pytest.raises(ValueError, match="refusing to submit"):
        slurm_parameters(plan.jobs[0], [], 60)
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    run.plan_path.write_text(plan.to_json())
    with Progress("quiet", total=1) as view:
        assert SlurmExecutor().run(plan, plan.jobs, run, view) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: job 'pref.pairs.on_policy_2.generate': refusing to submit: ") and "\n" not in err
    assert not (fake_slurm / "submitted.sh").exists() and not (run.root / "submitit").exists()
    assert not list(tmp_path.rglob(MARK))


@pytest.mark.parametrize("field,placement", list(hostile_placements()))
def test_a_plan_json_with_a_hostile_placement_does_not_load(tmp_path, field, placement):
    (tmp_path / "plan.json").write_text(slurm_plan(tmp_path, **placement).to_json())
    with pytest.raises(ValueError) as refused:
        load_plan(tmp_path / "plan.json")
    assert "\n" not in str(refused.value) and "placement" in str(refused.value)


def test_a_run_directory_with_a_newline_is_refused_before_submitting(tmp_path, fake_slurm, capsys, monkeypatch):
    monkeypatch.setattr(_Watch, "until_done", lambda self, poll_s: 0)
    plan = slurm_plan(tmp_path)
    run = RunDir(tmp_path / f"run\ntouch {MARK}")
    run.root.mkdir()
    run.plan_path.write_text(plan.to_json())
    with Progress("quiet", total=1) as view:
        assert SlurmExecutor().run(plan, plan.jobs, run, view) == 2
    assert "refusing to submit from run directory" in capsys.readouterr().err
    assert not (fake_slurm / "submitted.sh").exists() and not (run.root / "submitit").exists()

