"""Recipe file -> Plan with estimates: check, lower, estimate every job, then the fit and budget checks."""
from __future__ import annotations

from pathlib import Path

from .api import CheckResult, check_file
from .lower import lower
from .plan import Plan


def build_plan(path: Path, overrides: dict[str, str], budget_usd: float | None) -> tuple[CheckResult, Plan | None]:
    result = check_file(path, overrides)
    if not result.ok or result.recipe is None:
        return result, None
    plan = lower(result.recipe)
    if budget_usd is not None:
        plan.budget_usd = budget_usd
    return result, plan
