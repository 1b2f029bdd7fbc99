"""Recipe file -> Plan with estimates: check, lower, estimate every job, then the fit and batch checks.

Over-memory jobs (E0302) and impossible batch arithmetic (E0303) are errors at the stage's recipe line
with the numbers; a dataset size the planner had to assume (W0302, at the dataset's line) and a job
planned with under 10% of its GPU memory free (W0303) are warnings; the budget guard is applied by the
CLI (exit code 3)."""
from __future__ import annotations

from pathlib import Path

from .api import CheckResult, check_file
from .diagnostics import Diagnostic
from .estimate.jobs import BatchError, estimate_job, fix_hint
from .lower import lower
from .plan import Estimate, Plan, Totals, assign_hashes, topological_order
from .preflight.estimates import PLAN_RULES
from .source import Span
from .values import StageValue


def build_plan(path: Path, overrides: dict[str, str], budget_usd: float | None) -> tuple[CheckResult, Plan | None]:
    result = check_file(path, overrides)
    if not result.ok or result.recipe is None:
        return result, None
    plan = lower(result.recipe)
    if budget_usd is not None:
        plan.budget_usd = budget_usd
    recipe_dir = Path(path).resolve().parent
    pinned = {stage.id: stage.spans[("micro_batch",)] for stage in result.recipe.stages
              if ("micro_batch",) in stage.spans}
    problems = attach_estimates(plan, recipe_dir, {s.id: s for s in result.recipe.stages}, pinned)
    result.diagnostics.extend(problems)
    if any(d.severity == "error" for d in problems):
        return result, None
    return result, plan


def attach_estimates(plan: Plan, recipe_dir: Path, stages: dict[str, StageValue] | None = None,
                     pinned: dict[str, Span] | None = None) -> list[Diagnostic]:
    """Estimates and execution blocks of every job, then the hashes again (they cover the blocks); the
    errors (E0302, E0303) and warnings (W0302, W0303) found on the way. `pinned`: stage id -> span of
    its `micro_batch` field, where a pinned schedule's errors point."""
    problems: list[Diagnostic] = []
    for job in plan.jobs:
        stage_span = _span(job)
        span = (pinned or {}).get(job.stage) or stage_span  # a pinned micro-batch's schedule: at the field
        try:
            est = estimate_job(job, recipe_dir, job.placement.usd_per_gpu_hour)
        except BatchError as exc:
            where = span if str(exc).startswith("micro_batch") else stage_span
            problems.append(Diagnostic("E0303", f"stage `{job.stage}`: {exc}", where))
            continue
        job.estimate = Estimate(**est.model_dump(exclude={"assumed", "execution"}))
        job.execution = est.execution
        stage = (stages or {}).get(job.stage)
        for warning in (w for rule in PLAN_RULES for w in rule(job, est, stage, span)):
            if warning not in problems:  # one dataset several jobs count is reported once
                problems.append(warning)
        if not est.fits:
            mem = ", ".join(f"{k[4:-4]} {v:.1f}" for k, v in est.breakdown.items() if k.startswith("mem_"))
            problems.append(Diagnostic(
                "E0302", f"stage `{job.stage}` needs about {est.peak_memory_gib:.1f} GiB per GPU, more than the "
                f"{est.capacity_gib:.0f} GiB of a {job.placement.gpu} (GiB: {mem})", span,
                hint=fix_hint(job, recipe_dir)))
    assign_hashes(plan.jobs)
    plan.totals = _totals(plan)
    return problems


def _totals(plan: Plan) -> Totals:
    finish: dict[str, float] = {}
    for job in topological_order(plan.jobs):
        start = max((finish[d] for d in job.depends_on), default=0.0)
        finish[job.id] = start + job.estimate.hours
    return Totals(gpu_hours=sum(j.estimate.gpu_hours for j in plan.jobs),
                  cost_usd=sum(j.estimate.cost_usd for j in plan.jobs),
                  hours_critical_path=max(finish.values(), default=0.0))


def _span(job) -> Span | None:
    s = job.span
    return Span(s.file, s.line, s.col, s.end_line, s.end_col) if s else None
