"""Rendering plans for people and tools: a table, JSON, Graphviz dot, Mermaid, and plan diffs."""
from __future__ import annotations

import io
import json
from pathlib import Path

from .plan import Job, Plan, load_plan, select_jobs


def render(plan: Plan, fmt: str, only: str | None = None) -> str:
    jobs = select_jobs(plan, only)
    if fmt == "json":
        return plan.to_json().rstrip("\n")
    if fmt == "dot":
        return _dot(plan, jobs)
    if fmt == "mermaid":
        return _mermaid(plan, jobs)
    if fmt != "table":
        raise ValueError(f"unknown plan format {fmt!r}: table, json, dot or mermaid")
    return _table(plan, jobs)


def placement_text(job: Job) -> str:
    p = job.placement
    if p.gpus_per_node == 0:
        return "cpu"
    return f"{p.nodes}x{p.gpus_per_node} {p.gpu or ''}".strip()


def hours_text(h: float) -> str:
    if h <= 0:
        return "-"
    if h < 1 / 60:
        return f"{h * 3600:.0f}s"
    if h < 1:
        return f"{h * 60:.0f}min"
    return f"{h:.1f}h"


def _table(plan: Plan, jobs: list[Job]) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"plan: {plan.recipe.name}", title_justify="left")
    for col, just in (("job", "left"), ("kind", "left"), ("depends on", "left"), ("where", "left"),
                      ("schedule", "left"), ("time", "right"), ("GPU-h", "right"), ("$", "right"),
                      ("memory / GPU", "right")):
        table.add_column(col, justify=just)
    for job in jobs:
        e = job.estimate
        mem = f"{e.peak_memory_gib:.1f}/{e.capacity_gib:.0f} GiB" if e.capacity_gib else (
            f"{e.peak_memory_gib:.2f} GiB" if e.peak_memory_gib else "-")
        table.add_row(job.id, job.kind, ", ".join(job.depends_on) or "-", placement_text(job), schedule_text(job),
                      hours_text(e.hours),
                      f"{e.gpu_hours:,.1f}" if e.gpu_hours else "-", f"{e.cost_usd:,.0f}" if e.cost_usd else "-", mem)
    t = plan.totals
    table.add_section()
    table.add_row("total", "", "", "", "", hours_text(t.hours_critical_path), f"{t.gpu_hours:,.1f}", f"{t.cost_usd:,.0f}", "")
    buf = io.StringIO()
    Console(file=buf, width=160, force_terminal=False, color_system=None).print(table)
    return buf.getvalue().rstrip("\n")


def schedule_text(job: Job) -> str:
    """The execution block in a table cell: `16r 1x2acc ZeRO-2 sp4 ckpt` is 16 ranks, each accumulating 2
    micro-batches of 1 row, ZeRO-2, sequence parallelism over groups of 4 ranks, activation checkpointing (`--explain JOB` spells it out)."""
    b = job.execution
    if b is None:
        return "-"
    optimiser = "AdamW" if b.optimizer == "torch_adamw" else f"ZeRO-{b.zero_stage}"
    flags = [f" sp{b.sequence_parallel}" if b.sequence_parallel > 1 else "", " ckpt" if b.checkpointing else "",
             " groups-span" if b.groups_span_ranks else ""]
    pinned = "*" if b.micro_batch_pinned else ""
    return f"{b.world_size}r {b.micro_batch}{pinned}x{b.grad_accum}acc {optimiser}{''.join(flags)}"


def explain_job(plan: Plan, job_id: str) -> str:
    """`vpo plan --explain JOB`: the execution block the runtime will execute, field by field, and the
    estimate computed on it."""
    job = plan.job(job_id)
    lines = [f"job {job.id} ({job.kind}) at {job.span or '?'}, on {placement_text(job)}", f"  hash {job.hash}"]
    block = job.execution
    if block is None:
        lines.append("  no execution block (not a training job)")
    else:
        lines.append("  execution block (what `vpo run` executes):")
        for name, value in block.model_dump().items():
            lines.append(f"    {name:<20} {value}")
    e = job.estimate
    capacity = f" of {e.capacity_gib:.0f}" if e.capacity_gib else ""
    lines.append(f"  estimate on it: peak {e.peak_memory_gib:.1f}{capacity} GiB per GPU, step {e.step_time_s:.2f} s, "
                 f"{hours_text(e.hours)}, {e.gpu_hours:,.1f} GPU-h, ${e.cost_usd:,.0f}")
    memory = ", ".join(f"{k[4:-4]} {v:.1f}" for k, v in e.breakdown.items() if k.startswith("mem_"))
    if memory:
        lines.append(f"  memory (GiB): {memory}")
    return "\n".join(lines)


def _dot(plan: Plan, jobs: list[Job]) -> str:
    ids = {j.id for j in jobs}
    lines = [f'digraph "{plan.recipe.name}" {{', "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
    for j in jobs:
        lines.append(f'  "{j.id}" [label="{j.id}\\n{j.kind}"];')
    for j in jobs:
        for dep in j.depends_on:
            if dep in ids:
                lines.append(f'  "{dep}" -> "{j.id}";')
    return "\n".join(lines + ["}"])


def _mermaid(plan: Plan, jobs: list[Job]) -> str:
    def node(job_id: str) -> str:
        return "n_" + "".join(c if c.isalnum() else "_" for c in job_id)
    ids = {j.id for j in jobs}
    lines = ["flowchart LR"]
    for j in jobs:
        lines.append(f'  {node(j.id)}["{j.id}<br/>{j.kind}"]')
    for j in jobs:
        for dep in j.depends_on:
            if dep in ids:
                lines.append(f"  {node(dep)} --> {node(j.id)}")
    return "\n".join(lines)


def budget_exceeded(plan: Plan) -> str | None:
    if plan.budget_usd is not None and plan.totals.cost_usd > plan.budget_usd:
        return (f"budget exceeded: the plan costs ${plan.totals.cost_usd:,.0f}, over the budget of "
                f"${plan.budget_usd:,.0f}")
    return None


def load_any(path: Path, overrides: dict[str, str]) -> Plan:
    """A saved plan.json, or a recipe compiled now (for `vpo plan --diff old.vpo new.vpo`)."""
    if path.suffix == ".json":
        return load_plan(path)
    from .planning import build_plan
    result, plan = build_plan(path, overrides, None)
    if plan is None:
        raise SystemExit(f"error: {path} does not compile; run `vpo check {path}`")
    return plan


def render_diff(old: Plan, new: Plan) -> str:
    """Markdown, ready for a pull-request comment: jobs added, removed, changed, and the cost delta."""
    old_jobs, new_jobs = {j.id: j for j in old.jobs}, {j.id: j for j in new.jobs}
    added = [j for j in new_jobs if j not in old_jobs]
    removed = [j for j in old_jobs if j not in new_jobs]
    changed = [j for j in new_jobs if j in old_jobs and new_jobs[j].hash != old_jobs[j].hash]
    out = [f"### vpo plan diff: `{old.recipe.name}` -> `{new.recipe.name}`", "",
           "| | job | kind | GPU-h | $ | what changed |", "|---|---|---|---:|---:|---|"]
    for j in added:
        e = new_jobs[j].estimate
        out.append(f"| + | `{j}` | {new_jobs[j].kind} | {e.gpu_hours:,.1f} | {e.cost_usd:,.0f} | new |")
    for j in removed:
        e = old_jobs[j].estimate
        out.append(f"| - | `{j}` | {old_jobs[j].kind} | -{e.gpu_hours:,.1f} | -{e.cost_usd:,.0f} | removed |")
    for j in changed:
        a, b = old_jobs[j], new_jobs[j]
        blocks = [x.execution.model_dump(mode="json") if x.execution else {} for x in (a, b)]
        configs = [x.config.model_dump(mode="json") for x in (a, b)]
        fields = _changed_fields(*configs) + _changed_fields(*blocks, "execution.") or ["inputs"]
        out.append(f"| ~ | `{j}` | {b.kind} | {b.estimate.gpu_hours - a.estimate.gpu_hours:+,.1f} | "
                   f"{b.estimate.cost_usd - a.estimate.cost_usd:+,.0f} | {', '.join(fields[:6])} |")
    if not (added or removed or changed):
        out.append("| | | | | | no job changed |")
    dg = new.totals.gpu_hours - old.totals.gpu_hours
    dc = new.totals.cost_usd - old.totals.cost_usd
    out += ["", f"**Total**: {old.totals.gpu_hours:,.1f} -> {new.totals.gpu_hours:,.1f} GPU-h ({dg:+,.1f}), "
            f"${old.totals.cost_usd:,.0f} -> ${new.totals.cost_usd:,.0f} ({dc:+,.0f})"]
    return "\n".join(out)


def _changed_fields(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(_changed_fields(va, vb, f"{prefix}{key}."))
        else:
            out.append(f"`{prefix}{key}`: {json.dumps(va)} -> {json.dumps(vb)}"[:80])
    return out
