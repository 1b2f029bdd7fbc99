"""Inline SVG pictures: the job DAG laid out by dependency depth, and line charts of metrics."""
from __future__ import annotations

import math
from html import escape

from vpolang.plan import Job

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
STATE_FILL = {"done": "#e3f4e1", "failed": "#fbe0e0", "cancelled": "#eeeeee", "running": "#fff4d6"}


def depths(jobs: list[Job]) -> dict[str, int]:
    """Longest path from a job without dependencies: jobs in one column can run side by side."""
    by_id, depth = {j.id: j for j in jobs}, {}

    def of(job_id: str, seen: frozenset = frozenset()) -> int:
        if job_id not in depth:
            deps = [d for d in by_id[job_id].depends_on if d in by_id and d not in seen]
            depth[job_id] = 1 + max((of(d, seen | {job_id}) for d in deps), default=-1)
        return depth[job_id]

    for job in jobs:
        of(job.id)
    return depth


def dag_svg(jobs: list[Job], states: dict[str, str]) -> str:
    """Boxes in columns by depth; an edge to the next column is a straight arrow, one that skips columns
    runs below every box (down the gutter after its source, along a lane of its own, up the gutter
    before its target) so it never hides behind the boxes it passes."""
    col_w, row_h, box_w, box_h = 210, 64, 180, 44
    depth = depths(jobs)
    columns: dict[int, list[Job]] = {}
    for job in jobs:
        columns.setdefault(depth[job.id], []).append(job)
    pos = {job.id: (20 + d * col_w, 20 + i * row_h) for d, col in columns.items() for i, job in enumerate(col)}
    edges = [(dep, job.id) for job in jobs for dep in job.depends_on if dep in pos]
    long_edges = [e for e in edges if depth[e[1]] - depth[e[0]] > 1]
    lanes_top = 20 + max((len(c) for c in columns.values()), default=1) * row_h
    width = 40 + (max(columns, default=0) + 1) * col_w
    height = lanes_top + 10 * len(long_edges) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="job graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>']
    for source, target in edges:
        (x1, y1), (x2, y2) = pos[source], pos[target]
        a, b = (x1 + box_w, y1 + box_h / 2), (x2, y2 + box_h / 2)
        if (source, target) in long_edges:
            k = long_edges.index((source, target))
            lane, out_x, in_x = lanes_top + 10 * k, a[0] + 6 + 3 * (k % 6), b[0] - 6 - 3 * (k % 6)
            route = f"M{a[0]},{a[1]} H{out_x} V{lane} H{in_x} V{b[1]} H{b[0]}"
        else:
            route = f"M{a[0]},{a[1]} L{b[0]},{b[1]}"
        parts.append(f'<path d="{route}" fill="none" stroke="#666" marker-end="url(#arrow)"/>')
    for job in jobs:
        x, y = pos[job.id]
        fill = STATE_FILL.get(states.get(job.id, ""), "#ffffff")
        parts.append(f'<g><title>{escape(job.id)} ({escape(job.kind)}): {escape(states.get(job.id, "not started"))}'
                     f'</title><rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="{fill}" '
                     f'stroke="#444"/><text x="{x + 8}" y="{y + 18}" font-size="13" font-weight="bold">'
                     f'{escape(_clip(job.id, 24))}</text><text x="{x + 8}" y="{y + 35}" font-size="11" fill="#555">'
                     f'{escape(job.kind)} · {escape(states.get(job.id, "not started"))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], width: int = 420, height: int = 220) -> str:
    """One chart, several named series of (x, y); non-finite points are dropped."""
    clean = {k: thin([(x, y) for x, y in v if math.isfinite(x) and math.isfinite(y)]) for k, v in series.items()}
    clean = {k: v for k, v in clean.items() if v}
    left, right, top, bottom = 56, 12, 26, 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    if not clean:
        parts.append(f'<text x="{left}" y="{height / 2}" font-size="12" fill="#777">no finite values</text></svg>')
        return "".join(parts)
    xs = [x for v in clean.values() for x, _ in v]
    ys = [y for v in clean.values() for _, y in v]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pw, ph = width - left - right, height - top - bottom

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * pw, top + (1 - (y - y0) / (y1 - y0)) * ph

    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
    for value in (y0, (y0 + y1) / 2, y1):
        _, y = px(x0, value)
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_num(value)}</text>')
    for value in (x0, x1):
        x, _ = px(value, y0)
        parts.append(f'<text x="{x:.1f}" y="{height - 12}" font-size="10" text-anchor="middle">{_num(value)}</text>')
    prefix = _shared_prefix(list(clean))
    for i, (name, points) in enumerate(sorted(clean.items())):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in points))
        if len(points) == 1:
            a, b = px(*points[0])
            parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>')
        else:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5">'
                         f'<title>{escape(name)}</title></polyline>')
        parts.append(f'<text x="{left + 6 + 110 * (i % 3)}" y="{top + 14 + 12 * (i // 3)}" font-size="10" '
                     f'fill="{colour}">{escape(_clip(name[len(prefix):], 18))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def thin(points: list[tuple[float, float]], buckets: int = 200) -> list[tuple[float, float]]:
    """At most 2 * buckets + 2 points (the first and last always): each run of consecutive points keeps its lowest and highest, in order,
    so a long run's chart stays small and its spikes stay visible."""
    if len(points) <= 2 * buckets:
        return points
    size = len(points) / buckets
    out = []
    for b in range(buckets):
        chunk = points[round(b * size):round((b + 1) * size)]
        lo, hi = min(chunk, key=lambda p: p[1]), max(chunk, key=lambda p: p[1])
        out.extend(sorted({lo, hi}, key=chunk.index))
    return [points[0]] * (out[0] != points[0]) + out + [points[-1]] * (out[-1] != points[-1])


def _shared_prefix(names: list[str]) -> str:
    """`reward/` when every series is `reward/<head>`: the legend names the heads."""
    heads = {n.split("/", 1)[0] for n in names}
    return f"{heads.pop()}/" if len(heads) == 1 and all("/" in n for n in names) else ""


def _num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"
