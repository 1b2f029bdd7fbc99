"""Recipe file -> Plan with estimates: check, lower, estimate every job, then the fit and batch checks.

Over-memory jobs (E0302) and impossible batch arithmetic (E0303) are errors at the stage's recipe line
with the numbers; a dataset size the planner had to assume (W0302, at the dataset's line) and a job
planned with under 10% of its GPU memory free (W0303) are warnings; the budget guard is applied by the
CLI (exit code 3)."""
from __future__ import annotations

import re
from pathlib import Path

from .api import CheckResult, check_file
from .diagnostics import Diagnostic
from .estimate.jobs import BatchError, estimate_job, fixes
from .lower import lower
from .plan import Estimate, Plan, Totals, topological_order
from .errors_map import span_for
from .source import Span
from .values import StageValue

MIN_HEADROOM = 0.10  # fraction of GPU memory a planned job should leave free


def build_plan(path: Path, overrides: dict[str, str], budget_usd: float | None) -> tuple[CheckResult, Plan | None]:
    result = check_file(path, overrides)
    if not result.ok or result.recipe is None:
        return result, None
    plan = lower(result.recipe)
    if budget_usd is not None:
        plan.budget_usd = budget_usd
    recipe_dir = Path(path).resolve().parent
    problems = attach_estimates(plan, recipe_dir, {s.id: s for s in result.recipe.stages})
    result.diagnostics.extend(problems)
    if any(d.severity == "error" for d in problems):
        return result, None
    return result, plan


def attach_estimates(plan: Plan, recipe_dir: Path, stages: dict[str, StageValue] | None = None) -> list[Diagnostic]:
    """Estimate every job; the errors (E0302, E0303) and warnings (W0302, W0303) found on the way."""
    problems: list[Diagnostic] = []
    for job in plan.jobs:
        span = _span(job)
        try:
            est = estimate_job(job, recipe_dir, job.placement.usd_per_gpu_hour)
        except BatchError as exc:
            problems.append(Diagnostic("E0303", f"stage `{job.stage}`: {exc}", span))
            continue
        job.estimate = Estimate(**est.model_dump(exclude={"assumed"}))
        stage = (stages or {}).get(job.stage)
        for warning in _assumed(job, est.assumed, stage, span) + _headroom(job, est, span):
            if warning not in problems:
                problems.append(warning)
        if not est.fits:
            mem = ", ".join(f"{k[4:-4]} {v:.1f}" for k, v in est.breakdown.items() if k.startswith("mem_"))
            options = fixes(job, recipe_dir)
            problems.append(Diagnostic(
                "E0302", f"stage `{job.stage}` needs about {est.peak_memory_gib:.1f} GiB per GPU, more than the "
                f"{est.capacity_gib:.0f} GiB of a {job.placement.gpu} (GiB: {mem})", span,
                hint=("would fit: " + "; ".join(options)) if options else "no single change makes it fit; "
                "combine LoRA, more nodes and a lower resolution"))
    plan.totals = _totals(plan)
    return problems


def _assumed(job, assumed: list[str], stage: StageValue | None, span: Span | None) -> list[Diagnostic]:
    """W0302: every number the planner invented, at the line of the dataset it could not count."""
    return [Diagnostic("W0302", f"stage `{job.stage}`: {what}; job `{job.id}`'s time and cost rest on it",
                       _dataset_span(stage, job, what) or span,
                       hint="make the files readable here (plan where the data is) for counted sizes, or "
                       "set `steps` so the plan does not depend on the dataset's size")
            for what in assumed]


def _dataset_span(stage: StageValue | None, job, what: str) -> Span | None:
    """The span of the stage field holding what the assumption is about: the dataset it names by path,
    else the field of the lowered input it names (`from pairs.on_policy`), else the field a data
    job was lowered from (`pref.pairs.on_policy.judge`)."""
    if stage is None:
        return None
    for path, spec in _specs_with_paths(stage.config, ()):
        if f" {spec['path']}:" in what:
            return span_for(path, stage.spans, stage.span)
    slot = re.search(r"from `([A-Za-z_]+)\.", what)
    if slot:
        return span_for((slot.group(1),), stage.spans, stage.span)
    if job.id.startswith(stage.id + "."):
        return span_for((job.id[len(stage.id) + 1:].split(".")[0],), stage.spans, stage.span)
    return None


def _specs_with_paths(value, path: tuple):
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) and "kind" in value:
            yield path, value
        if "ref" not in value:
            for key, item in value.items():
                yield from _specs_with_paths(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _specs_with_paths(item, path + (i,))


def _headroom(job, est, span: Span | None) -> list[Diagnostic]:
    """W0303: a job that fits with under 10% of GPU memory to spare (fragmentation, a longer prompt or
    a library upgrade can push it over)."""
    cap = est.capacity_gib
    if not cap or not est.fits or est.peak_memory_gib < (1 - MIN_HEADROOM) * cap:
        return []
    free = 100 * (1 - est.peak_memory_gib / cap)
    return [Diagnostic("W0303", f"stage `{job.stage}`: job `{job.id}` is planned at {est.peak_memory_gib:.1f} of "
                       f"{cap:.0f} GiB per GPU ({free:.0f}% free, under {100 * MIN_HEADROOM:.0f}%)", span,
                       hint="lower the batch per GPU, set `gradient_checkpointing = true`, use LoRA or more GPUs")]


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
