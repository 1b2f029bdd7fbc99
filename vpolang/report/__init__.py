"""`vpo report RUN`: one self-contained HTML page per run directory (plan, curves, samples, evaluations).

Reads only files the runtime leaves behind (plan.json, status.json, metrics.jsonl, evaluation
artifacts), so it needs neither torch nor the runtime: a laptop can render a cluster's run folder."""
from .collect import NotARun, collect_run
from .page import render_page


def render_report(run_dir) -> str:
    return render_page(collect_run(run_dir))


__all__ = ["NotARun", "collect_run", "render_page", "render_report"]
