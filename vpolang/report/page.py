"""The HTML page: everything inline (styles, SVG, GIFs as data URIs), no scripts from elsewhere."""
from __future__ import annotations

import math
import re
from html import escape

from vpolang.health import alarms, deduplicated
from vpolang.planview import hours_text, placement_text

from .collect import JobRecord, RunRecord
from .media import gif_data_uri
from .svg import dag_svg, line_chart
from .verdict import stage_verdicts

STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.state-done{color:#1a7f37}.state-failed{color:#c62828}.state-cancelled{color:#777}.charts{display:flex;flex-wrap:wrap;gap:8px}
.samples img{image-rendering:pixelated;width:192px;height:192px}
.verdict-better{color:#1a7f37;font-weight:600}.verdict-worse{color:#c62828;font-weight:600}.verdict-no{color:#777}
.alarm{background:#fdecea;border:2px solid #c62828;color:#8b1a1a;padding:8px 12px;margin:8px 0;font-weight:600}
tr.target td{background:#fafff5}.muted{color:#777}pre{white-space:pre-wrap}
.alarm-error{color:#c62828}.alarm-warning{color:#b26a00}"""

# Every image decoded: the page marks itself, so a headless browser (the tests) can tell it rendered.
CHECK = """window.addEventListener('load',function(){var bad=0;var imgs=document.images;
for(var i=0;i<imgs.length;i++){if(!imgs[i].complete||imgs[i].naturalWidth===0){bad++;}}
document.body.setAttribute('data-rendered', bad===0 ? 'ok' : 'broken-images-' + bad);});"""

# Which chart a metric goes on (first match wins): GRPO logs `reward/<head>` per reward term beside
# `reward_mean`/`reward_std`, `adv_abs_mean`, `kl`, `clip_frac` and `joint_weight/<i>`; `with validate`
# logs `val/<metric>`, drawn beside the training reward.
GROUPS = (("loss", re.compile(r"(^|_)(loss|nll)")), ("rewards per head", re.compile(r"^reward/")),
          ("reward", re.compile(r"reward|score|accuracy|^val/")), ("KL", re.compile(r"(^|_)kl($|_)")),
          ("advantage", re.compile(r"adv")), ("clipping", re.compile(r"clip_frac")),
          ("joint reward weights", re.compile(r"^joint_weight/")), ("gradient norm", re.compile(r"grad_norm")))
SKIP = {"step", "time"}


def render_page(run: RunRecord) -> str:
    title = f"vpo report: {run.plan.recipe.name}"
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="muted">run directory {escape(str(run.root))} · recipe {escape(run.plan.recipe.path)} '
            f"(sha256 {escape(run.plan.recipe.sha256[:12])}) · plan schema {escape(run.plan.schema_version)}</p>",
            _verdict_section(run), _plan_section(run), _jobs_section(run), _health_section(run), _curves_section(run),
            _samples_section(run),
            _evaluation_section(run)]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{CHECK}</script></body></html>\n")


def _verdict_section(run: RunRecord) -> str:
    """The first screen: did each stage improve what it optimises, on held-out prompts?"""
    blocks = []
    for r in run.jobs:
        verdicts = stage_verdicts(run, r.evaluation) if r.evaluation else []
        if not verdicts:
            continue
        rows, alarms = [], []
        for v in verdicts:
            alarms += v.alarms
            for i, row in enumerate(v.rows):
                d = row.diff
                verdict_cls = "verdict-" + row.verdict.split()[0]
                first = (f'<td rowspan="{len(v.rows)}">{escape(v.stage)} <span class="muted">({escape(v.kind)} '
                         f'from {escape(v.start)})</span><br><span class="{"verdict-" + v.verdict.split()[0]}">'
                         f"{escape(v.verdict)}</span></td>") if i == 0 else ""
                arrow = "&uarr; higher is better" if row.higher_is_better else "&darr; lower is better"
                rows.append(f'<tr class="{"target" if row.target else ""}">{first}'
                            f"<td>{escape(row.metric)}{' (target)' if row.target else ''} "
                            f'<span class="muted">{arrow}</span></td>'
                            f'<td class="num">{_number(row.before)} &rarr; {_number(row.after)}</td>'
                            f'<td class="num">{_estimate(d)}</td><td class="num">{_number(d.get("p"))}</td>'
                            f'<td class="{verdict_cls}">{escape(row.verdict)}</td></tr>')
        head = _row(["stage", "metric", "before -> after", "paired difference [95% interval]", "p", "verdict"],
                    header=True)
        alarm_html = "".join(f'<div class="alarm">ALARM: {escape(a)}</div>' for a in alarms)
        n = (r.evaluation or {}).get("samples")
        blocks.append(f"{alarm_html}<table>{head}{''.join(rows)}</table>"
                      f'<p class="muted">evaluation `{escape(r.job.id)}` on {escape(str(n))} held-out samples: each stage '
                      "minus the policy it started from, on the same prompts and noise; p: two-sided sign-flip "
                      "permutation test; better / worse at p &lt; 0.01, else no change</p>")
    if not blocks:
        return ""
    return f'<section id="verdict"><h2>Did it work?</h2>{"".join(blocks)}</section>'


def _plan_section(run: RunRecord) -> str:
    states = {r.job.id: r.state for r in run.jobs}
    rows = []
    for job in run.plan.jobs:
        e = job.estimate
        memory = (f"{e.peak_memory_gib:.1f} / {e.capacity_gib:.0f} GiB" if e.capacity_gib
                  else f"{e.peak_memory_gib:.2f} GiB" if e.peak_memory_gib else "-")
        rows.append(_row([job.id, job.kind, ", ".join(job.depends_on) or "-", placement_text(job), hours_text(e.hours),
                          f"{e.gpu_hours:,.1f}" if e.gpu_hours else "-", f"{e.cost_usd:,.0f}" if e.cost_usd else "-",
                          memory], numeric_from=4))
    t = run.plan.totals
    rows.append(_row(["total", "", "", "", hours_text(t.hours_critical_path), f"{t.gpu_hours:,.1f}" if t.gpu_hours
                      else "-", f"{t.cost_usd:,.0f}" if t.cost_usd else "-", ""], numeric_from=4, header=True))
    head = _row(["job", "kind", "depends on", "where", "time", "GPU-h", "$", "memory / GPU"], header=True)
    return (f'<section id="plan"><h2>Plan</h2>{dag_svg(run.plan.jobs, states)}'
            f"<table>{head}{''.join(rows)}</table></section>")


def _jobs_section(run: RunRecord) -> str:
    rows = []
    for r in run.jobs:
        s = r.status
        started, finished = s.get("started"), s.get("finished")
        took = finished - started if all(isinstance(t, (int, float)) for t in (started, finished)) else None
        state = f'<span class="state-{escape(str(r.state))}">{escape(str(r.state))}</span>'
        detail = escape(str(s.get("error") or s.get("stop_reason") or ""))
        last = _number(r.metrics[-1].get("step")) if r.metrics else None
        rows.append(f"<tr><td>{escape(r.job.id)}</td><td>{escape(r.job.kind)}</td><td>{state}</td>"
                    f'<td class="num">{"-" if took is None else f"{took:.1f} s"}</td>'
                    f'<td class="num">{"-" if last is None else last}</td><td><pre>{detail}</pre></td></tr>')
    head = _row(["job", "kind", "state", "wall time", "last step", "error / stop reason"], header=True)
    return f'<section id="jobs"><h2>Jobs</h2><table>{head}{"".join(rows)}</table></section>'


def _health_section(run: RunRecord) -> str:
    """The health alarms (vpolang/health.py) each job's metrics raise: the same rules as `vpo status`."""
    rows = [f'<tr><td>{escape(r.job.id)}</td><td class="alarm-{a.severity}">{escape(a.severity)}</td>'
            f'<td>{escape(a.code)}</td><td class="num">{a.step}</td><td>{escape(a.message)}</td></tr>'
            for r in run.jobs for a in alarms(r.metrics, r.job.config)]
    if not rows:
        return '<section id="health"><h2>Health</h2><p class="muted">no alarms</p></section>'
    head = _row(["job", "severity", "alarm", "step", "what"], header=True)
    return f'<section id="health"><h2>Health</h2><table>{head}{"".join(rows)}</table></section>'


def _curves_section(run: RunRecord) -> str:
    blocks = []
    for r in run.jobs:
        charts = [line_chart(f"{r.job.id}: {group}", series) for group, series in _grouped_series(r).items()]
        if charts:
            blocks.append(f'<h3>{escape(r.job.id)} <span class="muted">({escape(r.job.kind)})</span></h3>'
                          f'<div class="charts">{"".join(charts)}</div>')
    inner = "".join(blocks) or '<p class="muted">no job has recorded metrics yet</p>'
    return f'<section id="curves"><h2>Training curves</h2>{inner}</section>'


def _grouped_series(r: JobRecord) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Numeric metrics by kind (loss, reward, KL, advantage, gradient norm, other), over steps; jobs with
    a single record (judges, generation) have no curve to draw."""
    if len(r.metrics) < 2:
        return {}
    groups: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for rec in deduplicated(r.metrics):  # a resumed job's re-logged steps count once
        step = rec.get("step")
        if not isinstance(step, (int, float)):
            continue
        for key, value in rec.items():
            if key in SKIP or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            group = next((name for name, pattern in GROUPS if pattern.search(key)), "other")
            groups.setdefault(group, {}).setdefault(key, []).append((float(step), float(value)))
    return split_scales(groups)


SCALE_RATIO = 10.0  # a series moving over less than 1/10 of its chart's axis is drawn on an axis of its own


def split_scales(groups: dict[str, dict[str, list[tuple[float, float]]]]) -> dict[str, dict[str, list]]:
    """A chart whose series live on different scales (DPO's beta of 500 beside a margin of a few
    thousandths) would draw the small ones as flat lines: a series that moves over less than 1/SCALE_RATIO
    of the chart's shared axis gets a chart of its own (`group: name`), with its own axis."""
    out: dict[str, dict[str, list]] = {}
    for group, series in groups.items():
        values = [v for pts in series.values() for _, v in pts]
        axis = max(values) - min(values) if values else 0.0
        spans = {k: max(v for _, v in pts) - min(v for _, v in pts) for k, pts in series.items() if pts}
        squashed = [k for k, span in spans.items() if 0 < span < axis / SCALE_RATIO] if len(series) > 1 else []
        kept = {k: pts for k, pts in series.items() if k not in squashed}
        if kept:
            out[group] = kept
        out.update({f"{group}: {k}": {k: series[k]} for k in squashed})
    return out


def _samples_section(run: RunRecord) -> str:
    blocks = []
    for r in run.jobs:
        if not r.samples:
            continue
        policies = list(dict.fromkeys(s.policy for s in r.samples))
        by_prompt: dict[str, dict[str, str]] = {}
        for s in r.samples:
            uri = gif_data_uri(s.gif)
            if uri is not None:
                by_prompt.setdefault(s.prompt, {}).setdefault(s.policy, uri)
        if not by_prompt:
            blocks.append(f'<h3>{escape(r.job.id)}</h3><p class="muted">its sample files are not readable GIFs</p>')
            continue
        head = _row(["prompt", *policies], header=True)
        rows = [f"<tr><td>{escape(prompt)}</td>" + "".join(
            f'<td><img alt="{escape(p)}: {escape(prompt)}" src="{cells[p]}"></td>' if p in cells else "<td>-</td>"
            for p in policies) + "</tr>" for prompt, cells in by_prompt.items()]
        blocks.append(f"<h3>{escape(r.job.id)}</h3><table class=\"samples\">{head}{''.join(rows)}</table>")
    inner = "".join(blocks) or '<p class="muted">no evaluation has saved samples yet</p>'
    return f'<section id="samples"><h2>Samples</h2>{inner}</section>'


def _evaluation_section(run: RunRecord) -> str:
    blocks = []
    for r in run.jobs:
        models = (r.evaluation or {}).get("models")
        if not isinstance(models, dict) or not models:
            continue
        metrics = list(dict.fromkeys(m for values in models.values() if isinstance(values, dict) for m in values))
        head = _row(["policy", *metrics], header=True)
        rows = [f"<tr><td>{escape(policy)}</td>" + "".join(
            f'<td class="num">{_estimate(values.get(m))}</td>' for m in metrics) + "</tr>"
            for policy, values in models.items() if isinstance(values, dict)]
        blocks.append(f"<h3>{escape(r.job.id)}</h3><table>{head}{''.join(rows)}</table>"
                      '<p class="muted">mean [95% interval] over the evaluation prompts</p>')
        blocks.append(_paired_table(r.evaluation.get("paired")))
        blocks.append(_keyed_table("Good / Same / Bad of the policy against", r.evaluation.get("gsb")))
        blocks.append(_keyed_table("Metrics ranking the human choices", r.evaluation.get("judges")))
    inner = "".join(blocks) or '<p class="muted">no evaluation has finished yet</p>'
    return f'<section id="evaluation"><h2>Evaluation</h2>{inner}</section>'


def _paired_table(paired) -> str:
    """{baseline: {metric: paired difference}}: the policy minus each baseline on the same samples."""
    if not isinstance(paired, dict) or not paired:
        return ""
    metrics = list(dict.fromkeys(m for values in paired.values() if isinstance(values, dict) for m in values))
    rows = [f"<tr><td>{escape(name)}</td>"
            + "".join(f'<td class="num">{_paired_cell(values.get(m))}</td>' for m in metrics) + "</tr>"
            for name, values in paired.items() if isinstance(values, dict)]
    return (f"<h4>The policy minus each baseline, paired</h4><table>{_row(['', *metrics], header=True)}{''.join(rows)}"
            "</table><p class=\"muted\">mean difference [95% interval] on the same prompts and noise; "
            "p: two-sided sign-flip permutation test</p>")


def _paired_cell(value) -> str:
    p = f" p={_number(value['p'])}" if isinstance(value, dict) and "p" in value else ""
    return _estimate(value) + p


def _keyed_table(title: str, table) -> str:
    """{row name: {column: number}} as a table (GSB per baseline, judge rankings per metric)."""
    if not isinstance(table, dict) or not table:
        return ""
    columns = list(dict.fromkeys(c for values in table.values() if isinstance(values, dict) for c in values))
    rows = [f"<tr><td>{escape(name)}</td>" + "".join(f'<td class="num">{_number(values.get(c))}</td>' for c in columns)
            + "</tr>" for name, values in table.items() if isinstance(values, dict)]
    return f"<h4>{escape(title)}</h4><table>{_row(['', *columns], header=True)}{''.join(rows)}</table>"


def _number(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3g}"
    return "-" if value is None else escape(str(value))


def _estimate(value) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("mean"), (int, float)):
        return "-" if value is None else escape(str(value))
    mean, ci = value["mean"], value.get("ci95")
    text = "nan" if math.isnan(mean) else f"{mean:.4g}"
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(c, (int, float)) for c in ci):
        text += f" [{ci[0]:.4g}, {ci[1]:.4g}]"
    return escape(text)


def _row(cells: list[str], header: bool = False, numeric_from: int | None = None) -> str:
    tag = "th" if header else "td"
    out = []
    for i, cell in enumerate(cells):
        cls = ' class="num"' if numeric_from is not None and i >= numeric_from and not header else ""
        out.append(f"<{tag}{cls}>{escape(str(cell))}</{tag}>")
    return "<tr>" + "".join(out) + "</tr>"
