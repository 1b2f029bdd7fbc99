"""The plan side of the preflight: warnings about the estimates of each lowered job, one rule per
function, run in order by vpolang/planning.py after a job is estimated. Each rule takes the job, its
JobEstimate, the stage it was lowered from and the stage's span."""
from __future__ import annotations

import re

from ..diagnostics import Diagnostic
from ..errors_map import span_for
from ..source import Span
from ..values import StageValue

MIN_HEADROOM = 0.10  # fraction of GPU memory a planned job should leave free


def assumed_sizes(job, est, stage: StageValue | None, span: Span | None) -> list[Diagnostic]:
    """W0302: every number the planner invented, at the line of the dataset it could not count."""
    return [Diagnostic("W0302", f"stage `{job.stage}`: {what}; job `{job.id}`'s time and cost rest on it",
                       _dataset_span(stage, job, what) or span,
                       hint="make the files readable here (plan where the data is) for counted sizes, or "
                       "set `steps` so the plan does not depend on the dataset's size")
            for what in est.assumed]


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


def memory_headroom(job, est, stage: StageValue | None, span: Span | None) -> list[Diagnostic]:
    """W0303: a job that fits with under 10% of GPU memory to spare (fragmentation, a longer prompt or
    a library upgrade can push it over)."""
    cap = est.capacity_gib
    if not cap or not est.fits or est.peak_memory_gib < (1 - MIN_HEADROOM) * cap:
        return []
    free = 100 * (1 - est.peak_memory_gib / cap)
    return [Diagnostic("W0303", f"stage `{job.stage}`: job `{job.id}` is planned at {est.peak_memory_gib:.1f} of "
                       f"{cap:.0f} GiB per GPU ({free:.0f}% free, under {100 * MIN_HEADROOM:.0f}%)", span,
                       hint="lower the batch per GPU, set `gradient_checkpointing = true`, use LoRA or more GPUs")]


PLAN_RULES = (assumed_sizes, memory_headroom)
