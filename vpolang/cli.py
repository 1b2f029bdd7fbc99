"""The `vpo` command line. Compile-side commands never import the GPU stack; `run` and `status` reach the
runtime through the `vpo.runtime` entry point, so the compiler does not depend on it."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .api import CheckResult, check_file
from .atomic import write_failure, write_text
from .diagnostics import Diagnostic, render_github, render_json, render_sarif, render_text

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="vpo: declarative post-training for text-to-video diffusion models.")

EXIT_OK, EXIT_ERRORS, EXIT_BUDGET = 0, 1, 3
FORMATS = ("text", "json", "github", "sarif")


def _overrides(sets: list[str] | None) -> dict[str, str]:
    out = {}
    for item in sets or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            typer.echo(f"error: --set expects name=value, got {item!r}", err=True)
            raise typer.Exit(2)
        out[name.strip()] = value.strip()
    return out


def _emit(diags: list[Diagnostic], sources: dict, fmt: str) -> None:
    if fmt == "json":
        typer.echo(render_json(diags))
    elif fmt == "github":
        if diags:
            typer.echo(render_github(diags))
    elif fmt == "sarif":
        typer.echo(render_sarif(diags))
    elif diags:
        typer.echo(render_text(diags, sources, color=sys.stderr.isatty()), err=True)


def _check_all(files: list[Path], sets: list[str] | None) -> list[CheckResult]:
    return [check_file(f, _overrides(sets)) for f in files]


@app.command()
def check(files: List[Path] = typer.Argument(..., help="recipes to check"),
          set_: Optional[List[str]] = typer.Option(None, "--set", help="override a param: name=value"),
          format: str = typer.Option("text", "--format", help="text | json | github | sarif")) -> None:
    """Check recipes for errors (syntax, names, types, ranges, cross-field rules)."""
    results = _check_all(files, set_)
    diags = [d for r in results for d in r.diagnostics]
    _emit(diags, {k: v for r in results for k, v in r.sources.items()}, _fmt(format))
    raise typer.Exit(EXIT_OK if all(r.ok for r in results) else EXIT_ERRORS)


@app.command()
def lint(files: List[Path] = typer.Argument(..., help="recipes to lint"),
         strict: bool = typer.Option(False, "--strict", help="warnings fail too"),
         set_: Optional[List[str]] = typer.Option(None, "--set", help="override a param: name=value"),
         format: str = typer.Option("text", "--format", help="text | json | github | sarif")) -> None:
    """Check recipes and run the lint rules; exit 1 on errors (and on warnings with --strict)."""
    from .lint import lint as lint_rules

    results = _check_all(files, set_)
    diags: list[Diagnostic] = []
    for r in results:
        diags.extend(r.diagnostics)
        if r.ok:
            diags.extend(lint_rules(r))
    _emit(diags, {k: v for r in results for k, v in r.sources.items()}, _fmt(format))
    failed = any(d.severity == "error" for d in diags) or (strict and diags)
    raise typer.Exit(EXIT_ERRORS if failed else EXIT_OK)


@app.command()
def fmt(files: List[Path] = typer.Argument(..., help="recipes to format in place"),
        check_only: bool = typer.Option(False, "--check", help="only report files that would change")) -> None:
    """Format recipes canonically (idempotent; comments kept; meaning unchanged)."""
    from .api import read_source
    from .format import format_source

    changed = 0
    for f in files:
        source, diag = read_source(f)
        if source is None:
            _emit([diag], {}, "text")
            raise typer.Exit(EXIT_ERRORS)
        try:
            new = format_source(source.text, source.name)
        except ValueError as exc:  # the file does not parse: formatting would change its meaning
            typer.echo(f"{f}: not formatted: {exc}", err=True)
            raise typer.Exit(EXIT_ERRORS)
        if new != source.text:
            changed += 1
            if check_only:
                typer.echo(f"would reformat {f}")
            else:
                try:
                    _rewrite(f, new)
                except OSError as exc:  # full, read-only: one line, and the file keeps its old text
                    typer.echo(f"{f}: not formatted: {write_failure(exc) or exc}", err=True)
                    raise typer.Exit(EXIT_ERRORS)
                typer.echo(f"reformatted {f}")
    raise typer.Exit(EXIT_ERRORS if check_only and changed else EXIT_OK)


def _rewrite(path: Path, text: str) -> None:
    """Replaces a recipe in place atomically (a crash leaves the old text or the new, never half of one),
    keeping its permissions and writing through a symlink to the file it names."""
    target = path.resolve()
    mode = target.stat().st_mode & 0o7777
    write_text(target, text)
    os.chmod(target, mode)


@app.command()
def explain(name: str = typer.Argument(..., help="a stage kind, field (grpo.group_size), modifier, "
                                       "constructor, stdlib item or diagnostic code"),
            format: str = typer.Option("text", "--format", help="text | markdown (editor hover text)")) -> None:
    """Explain a language item: fields, types, defaults and constraints, from the schemas."""
    from .explain import explain as explain_item
    from .hover import explain_markdown

    if format not in ("text", "markdown"):
        typer.echo("error: --format must be text or markdown", err=True)
        raise typer.Exit(EXIT_ERRORS)
    text = explain_markdown(name) if format == "markdown" else explain_item(name)
    typer.echo(text)
    raise typer.Exit(EXIT_OK if not text.startswith("unknown") else EXIT_ERRORS)


@app.command()
def plan(file: Path = typer.Argument(..., help="a recipe"),
         set_: Optional[List[str]] = typer.Option(None, "--set", help="override a param: name=value"),
         format: str = typer.Option("table", "--format", help="table | json | dot | mermaid"),
         output: Optional[Path] = typer.Option(None, "-o", "--output", help="save the plan JSON here"),
         budget: Optional[float] = typer.Option(None, "--budget", help="fail if the plan costs more (USD)"),
         only: Optional[str] = typer.Option(None, "--only", help="select jobs: rl, rl+, +rl"),
         diff: Optional[Path] = typer.Option(None, "--diff", help="compare with this older plan/recipe"),
         explain: Optional[str] = typer.Option(None, "--explain", help="a job's execution block and estimate")) -> None:
    """Show what a recipe will run: jobs, dependencies, schedules, GPU-hours, dollars, peak memory."""
    from . import planview
    from .planning import build_plan

    result, plan_obj = build_plan(file, _overrides(set_), budget)
    if plan_obj is None:
        _emit(result.diagnostics, result.sources, "text")
        raise typer.Exit(EXIT_ERRORS)
    warnings = [d for d in result.diagnostics if d.severity != "error"]
    if warnings:
        _emit(warnings, result.sources, "text")
    if output:
        from .plan import save_plan
        save_plan(plan_obj, output)
    if diff is not None:
        old = planview.load_any(diff, _overrides(set_))
        typer.echo(planview.render_diff(old, plan_obj))
    elif explain is not None:
        try:
            typer.echo(planview.explain_job(plan_obj, explain))
        except KeyError:
            typer.echo(f"error: no job `{explain}`; jobs: {', '.join(j.id for j in plan_obj.jobs)}", err=True)
            raise typer.Exit(EXIT_ERRORS)
    else:
        typer.echo(planview.render(plan_obj, format, only))
    exceeded = planview.budget_exceeded(plan_obj)
    if exceeded:
        typer.echo(exceeded, err=True)
        raise typer.Exit(EXIT_BUDGET)
    raise typer.Exit(EXIT_OK)


@app.command()
def run(target: Path = typer.Argument(..., help="a recipe or a saved plan.json"),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="override a param: name=value"),
        run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="where checkpoints and results go"),
        only: Optional[str] = typer.Option(None, "--only", help="select jobs: rl, rl+, +rl"),
        executor: Optional[str] = typer.Option(None, "--executor", help="local | slurm (default: placement)"),
        progress: str = typer.Option("auto", "--progress", help="auto | rich | plain | quiet"),
        force: bool = typer.Option(False, "--force", help="re-run selected jobs even if cached"),
        track: Optional[List[str]] = typer.Option(None, "--track", help="log every job to tensorboard and/or "
                                                  "wandb too (repeat or comma-separate; needs vpo[track])")) -> None:
    """Execute a recipe (or a saved plan): cached jobs are skipped, interrupted ones resume."""
    from .plan import PlanVersionError, load_plan
    from .planning import build_plan

    if target.suffix == ".json":
        try:
            plan_obj = load_plan(target)
        except (PlanVersionError, ValueError, OSError) as exc:
            typer.echo(f"error: cannot read plan {target}: {exc}", err=True)
            raise typer.Exit(EXIT_ERRORS)
    else:
        result, plan_obj = build_plan(target, _overrides(set_), None)
        if plan_obj is None:
            _emit(result.diagnostics, result.sources, "text")
            raise typer.Exit(EXIT_ERRORS)
    code = _runtime().run_plan(plan_obj, run_dir=run_dir, only=only, executor=executor, progress=progress,
                               force=force, track=[t.strip() for ts in track or [] for t in ts.split(",") if t.strip()])
    raise typer.Exit(code)


@app.command()
def status(run_dir: Path = typer.Argument(..., help="a run directory"),
           watch: bool = typer.Option(False, "--watch", help="redraw until the run ends (Ctrl-C stops watching)"),
           interval: float = typer.Option(2.0, "--interval", min=0.1, help="seconds between redraws with --watch"),
           max_seconds: Optional[float] = typer.Option(None, "--for", min=0, help="stop watching after this many "
                                                       "seconds")) -> None:
    """Show the state of every job in a run directory, with each job's health alarms."""
    raise typer.Exit(_runtime().show_status(run_dir, watch=watch, interval=interval, max_seconds=max_seconds))


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run directory"),
           output: Optional[Path] = typer.Option(None, "-o", "--output", help="where to write the page "
                                                 "(default: RUN/report.html)")) -> None:
    """Write one self-contained HTML page for a run: plan and costs, job states, curves, samples, evaluations."""
    from .report import NotARun, render_report

    try:
        page = render_report(run_dir)
    except NotARun as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_ERRORS)
    target = output or run_dir / "report.html"
    write_text(target, page)
    typer.echo(f"wrote {target} ({len(page) / 1024:.0f} KiB); open it in a browser")


def _runtime():
    """The runtime, found through its entry point (the compiler does not import it by name), or the module
    VPO_RUNTIME names (a source checkout that was not pip-installed, e.g. on a benchmark machine)."""
    from importlib.metadata import entry_points
    import importlib
    import os

    if os.environ.get("VPO_RUNTIME"):
        return importlib.import_module(os.environ["VPO_RUNTIME"])
    found = [ep for ep in entry_points(group="vpo.runtime") if ep.name == "api"]
    if not found:
        typer.echo("error: the vpo runtime is not installed (pip install -e '.[runtime]')", err=True)
        raise typer.Exit(EXIT_ERRORS)
    return importlib.import_module(found[0].value)


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        typer.echo(f"error: --format must be one of {', '.join(FORMATS)}", err=True)
        raise typer.Exit(2)
    return fmt


def main() -> None:
    app()


if __name__ == "__main__":
    main()
