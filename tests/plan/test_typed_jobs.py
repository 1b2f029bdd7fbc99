"""Every example and every shared target recipe plans, round-trips through plan.json, and each job loads
through the runtime's own typed loading (runtime/main.py: `load_plan`, then a JobContext's `config`)
without importing torch: the typed configs are the compiler's pydantic models (vpolang/jobconfig.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vpolang.jobconfig import CONFIGS, JOB_KINDS, JOBS, TRAINING_KINDS
from vpolang.plan import Job

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "examples").glob("*.vpo")) + sorted((ROOT.parent / "shared" / "recipes").glob("*.vpo"))

LOAD_EVERY_JOB = r"""
import json, os, sys, tempfile
from pathlib import Path
from vpolang.planning import build_plan
from vpolang.jobconfig import CONFIGS, TRAINING_KINDS
from runtime.main import load_plan
from runtime.context import JobContext
from runtime.rundir import RunDir

loaded = {}
with tempfile.TemporaryDirectory() as tmp:
    for recipe in sys.argv[1:]:
        result, plan = build_plan(Path(recipe), {}, None)
        errors = [f"{d.code} {d.message}" for d in result.diagnostics if d.severity == "error"]
        assert plan is not None and not errors, (recipe, errors)
        path = Path(tmp, Path(recipe).stem + ".plan.json")
        path.write_text(plan.to_json())
        again = load_plan(path)
        assert again.to_json() == plan.to_json(), recipe  # JSON round trip is exact
        run = RunDir(Path(tmp, "run"))
        for job in again.jobs:
            ctx = JobContext(again, job, run, run.job(job))
            cfg = ctx.config
            assert type(cfg) is CONFIGS[job.kind], (recipe, job.id, type(cfg))
            if job.kind in TRAINING_KINDS:
                ctx.execution  # present: the runtime refuses a training job without one
            loaded.setdefault(job.kind, 0)
            loaded[job.kind] += 1
print(json.dumps({"torch": "torch" in sys.modules, "loaded": loaded}))
"""


def test_every_recipe_loads_through_the_runtime_without_torch():
    assert len(RECIPES) >= 10, RECIPES  # five examples, five shared target recipes
    out = subprocess.run([sys.executable, "-c", LOAD_EVERY_JOB, *map(str, RECIPES)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["torch"] is False, "loading a plan's typed configs imported torch"
    assert set(report["loaded"]) <= set(JOB_KINDS) and len(report["loaded"]) >= 8, report  # all but kto


def test_one_table_of_kinds():
    from runtime.registry import KINDS

    assert tuple(KINDS) == JOB_KINDS
    assert set(TRAINING_KINDS) == {k for k, info in JOBS.items() if info.training}
    for kind, model in CONFIGS.items():
        assert model.model_fields["kind"].default == kind


def test_config_of_another_kind_or_with_an_unknown_field_is_refused():
    import pytest
    from pydantic import ValidationError

    good = {"id": "g", "kind": "judge", "stage": "s",
            "config": {"judges": [{"ref": "reward", "name": "r", "head": None, "heads": []}]}}
    job = Job.model_validate(good)
    assert job.config.pick == "best_worst" and job.config.margin == 0.0  # the on_policy schema's defaults
    with pytest.raises(ValidationError, match="unknown|Extra inputs"):
        Job.model_validate({**good, "config": {**good["config"], "pik": "all_pairs"}})
    with pytest.raises(ValidationError, match="config is of kind"):
        Job.model_validate({**good, "kind": "generate", "config": {**good["config"], "kind": "judge"}})


def test_a_field_added_to_a_stage_schema_reaches_its_job_config():
    """The derivation is automatic: the job config of a stage kind has exactly the stage's fields, plus
    `model` where lowering resolves the policy's architecture."""
    from vpolang.schema.stages import STAGES

    for kind, schema in STAGES.items():
        extra = {"model"} if "policy" in schema.model_fields else set()
        assert set(CONFIGS[kind].model_fields) == set(schema.model_fields) | extra, kind
        for name, info in schema.model_fields.items():
            assert CONFIGS[kind].model_fields[name].default == info.default, (kind, name)
    schema = json.loads((ROOT / "spec" / "plan.schema.json").read_text())
    assert "GrpoConfig" in schema["$defs"] and schema["$defs"]["Job"]["properties"]["config"].get("discriminator")
