"""The plans of the five example recipes are golden files (canonical JSON). After an intended change,
refresh them with `python -m tests.plan.test_golden_plans` and review the diff."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from vpolang.planning import build_plan

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "spec" / "cases" / "plans"
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.vpo"))


def plan_text(name: str) -> str:
    cwd = os.getcwd()
    os.chdir(ROOT)  # recipe paths in the plan are relative to the repository root
    try:
        result, plan = build_plan(Path("examples") / f"{name}.vpo", {}, None)
    finally:
        os.chdir(cwd)
    assert plan is not None, [d.message for d in result.diagnostics]
    return plan.to_json()


@pytest.mark.parametrize("name", EXAMPLES)
def test_plan_matches_golden(name):
    golden = GOLDEN / f"{name}.plan.json"
    assert plan_text(name) == golden.read_text(), \
        f"{golden.name} is stale: run `python -m tests.plan.test_golden_plans` and review the diff"


if __name__ == "__main__":
    for example in EXAMPLES:
        (GOLDEN / f"{example}.plan.json").write_text(plan_text(example))
