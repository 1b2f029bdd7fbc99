"""Helpers to run plans for real (job processes, as users do): a tiny recipe for the real trainers, and
plans of the toy trainer (tests/runtime/toy.py) for the runtime's own behaviour."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vpolang.plan import (ArtifactRef, ExecutionBlock, Job, Placement, Plan, PlanSpan, RecipeInfo, job_hash,
                          topological_order)

ROOT = Path(__file__).resolve().parents[2]
TOY = "tests.runtime.toy:run"
TOY_KINDS = ("sft", "grpo", "dpo")

TINY = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }

stage sft = sft(tiny) {
  data             = shapes.videos(n = 32, seed = 0)
  steps            = STEPS
  batch            = 4
  lr               = 1e-3
  checkpoint_every = 4
}

stage rl = grpo(sft) {
  prompts          = shapes.prompts(n = 4)
  group_size       = 2
  batch            = 2
  steps            = 2
  lr               = 1e-4
  reward           = shapes.alignment
  checkpoint_every = 1
}
"""


@pytest.fixture
def tiny_recipe(tmp_path):
    def write(steps: int = 12, extra: str = "") -> Path:
        path = tmp_path / "tiny.vpo"
        path.write_text(TINY.replace("STEPS", str(steps)) + extra)
        return path
    return write


def env(toy: bool = False, **extra: str) -> dict:
    e = dict(os.environ, **extra)
    e.setdefault("OMP_NUM_THREADS", "1")  # deterministic and polite on a 2-core machine
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    if toy:
        e["VPO_TRAINERS"] = ",".join(f"{kind}={TOY}" for kind in TOY_KINDS)
    return e


def vpo(*args, check=True, timeout=600, toy=False, cwd=ROOT, **extra_env: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=cwd, env=env(toy, **extra_env), timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"vpo {' '.join(map(str, args))} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def job_dir(run_dir: Path, job: str) -> Path:
    current = (run_dir / job / "current").read_text().strip()
    return run_dir / job / current


def status(run_dir: Path, job: str) -> dict:
    folders = sorted((run_dir / job).glob("*/status.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(folders[-1].read_text())


# ---- toy plans

# A valid config of each toy kind, as the compiler lowers it (the toy trainer reads only steps, lr,
# batch and checkpoint_every of it).
TOY_STAGES = {
    "sft": "stage s = sft(shapes.tiny_dit) {\n  data = shapes.videos(n = 8)\n  lr = 1e-4\n}",
    "grpo": "stage s = grpo(shapes.tiny_dit) {\n  prompts = shapes.prompts(n = 8)\n  reward = shapes.alignment\n"
            "  lr = 1e-5\n}",
    "dpo": "stage s = dpo(shapes.tiny_dit) {\n  pairs = pairs(\"p.jsonl\")\n  lr = 1e-5\n}",
}
_TOY_CONFIGS: dict[str, dict] = {}


def toy_config(kind: str) -> dict:
    if kind not in _TOY_CONFIGS:
        from vpolang.api import check_source
        from vpolang.lower import lower
        from vpolang.source import SourceFile

        text = "vpo 0.1\nuse std.shapes\n" + TOY_STAGES[kind] + "\n"
        result = check_source(SourceFile("toy.vpo", text, ROOT / "toy.vpo"))
        _TOY_CONFIGS[kind] = lower(result.recipe).job("s").config.model_dump(mode="json")
    return dict(_TOY_CONFIGS[kind])


_TOY_KNOBS: dict[str, dict] = {}  # job id -> what the toy takes beyond a valid config (see toy_plan)


def toy_job(job_id: str, kind: str = "sft", deps: tuple[str, ...] = (), line: int = 1, gpus: int = 0,
            executor: str = "local", step_sleep: float = 0.0, **config) -> Job:
    """A toy job of a real kind, its config valid for that kind. Two knobs are not config values:
    `step_sleep` (seconds per step, to leave time to interrupt it) and an `lr` above the plan's bound of
    1 (to make the job diverge); `toy_plan` hands them to the toy's processes through the environment."""
    config = {**toy_config(kind), "steps": 12, "lr": 0.05, "checkpoint_every": 4, **config}
    _TOY_KNOBS[job_id] = {"step_sleep": step_sleep, "lr": config["lr"] if config["lr"] > 1 else None}
    config["lr"] = min(config["lr"], 1.0)
    return Job(id=job_id, kind=kind, stage=job_id, depends_on=list(deps),
               inputs={f"init{i}": ArtifactRef(job=d, name="policy") for i, d in enumerate(deps)},
               outputs=["policy"], config=config, seed=7,
               placement=Placement(executor=executor, gpus_per_node=gpus),
               execution=ExecutionBlock(world_size=max(gpus, 1), optimizer="torch_adamw", rows_per_rank=1,
                                        micro_batch=1, grad_accum=1),  # what the toy trainer's plan would say
               span=PlanSpan(file="toy.vpo", line=line, col=1, end_line=line + 3, end_col=2))


def toy_plan(recipe: Path, jobs: list[Job]) -> Plan:
    """A plan as the compiler would lower it: hashes over config and upstream hashes."""
    hashes: dict[str, str] = {}
    for job in topological_order(jobs):
        job.hash = hashes[job.id] = job_hash(job, hashes)
    knobs = [_TOY_KNOBS.pop(job.id, {}) for job in jobs]  # each plan sets them afresh: none leaks to the next
    os.environ["VPO_TOY_STEP_SLEEP"] = str(max([k.get("step_sleep", 0.0) for k in knobs] + [0.0]))
    os.environ["VPO_TOY_LR"] = json.dumps({job.id: k["lr"] for job, k in zip(jobs, knobs) if k.get("lr")})
    return Plan(recipe=RecipeInfo(path=str(recipe), sha256="0" * 64, name=recipe.stem), jobs=jobs)


def chain(recipe: Path, **per_job: dict) -> Plan:
    """a -> b -> c, and d on its own; `b={"lr": 0.1}` changes one job's config."""
    jobs = [toy_job("a", "sft", line=3, **per_job.get("a", {})),
            toy_job("b", "grpo", ("a",), line=8, **per_job.get("b", {})),
            toy_job("c", "dpo", ("b",), line=13, **per_job.get("c", {})),
            toy_job("d", "sft", line=18, **per_job.get("d", {}))]
    return toy_plan(recipe, jobs)


def toy_run_command(plan: Plan, run_dir: Path, *args: str) -> list[str]:
    """`vpo run plan.json` for a toy plan."""
    plan_file = run_dir.parent / f"{run_dir.name}.plan.json"
    plan_file.write_text(plan.to_json())
    return [sys.executable, "-m", "vpolang.cli", "run", str(plan_file), "--run-dir", str(run_dir),
            "--progress", "plain", *args]


def run_toy(plan: Plan, run_dir: Path, *args: str, timeout: float = 300, **extra_env: str):
    """Runs a toy plan through the CLI, in a process of its own (as users do)."""
    return subprocess.run(toy_run_command(plan, run_dir, *args), capture_output=True, text=True, cwd=ROOT,
                          env=env(True, **extra_env), timeout=timeout)


def weights(folder: Path) -> dict:
    import torch

    return torch.load(folder / "artifacts" / "policy" / "weights.pt")


def assert_same_weights(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
