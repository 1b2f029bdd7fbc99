"""Running a conformance case: its directives, its diagnostics as golden lines, and their comparison.

A case is `spec/cases/<area>/<name>.vpo` starting with directives (`# expect: ok|error`, `# spec: 4`,
`# set: name=value`); beside it `<name>.diag` holds one line per diagnostic:
`severity code [file:]line:col-end_line:end_col message`. Tests compare severity, code and span, not
the wording. `python -m tests.conformance.regen` rewrites the .diag files (review the diff)."""
from __future__ import annotations

import re
from pathlib import Path

from vpolang.lint import lint
from vpolang.planning import build_plan

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "spec" / "cases"


def all_cases() -> list[Path]:
    return sorted(p for p in CASES.rglob("*.vpo") if "helpers" not in p.parts)


def directives(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        match = re.match(r"#\s*(expect|spec|set):\s*(.*)", line)
        if not match:
            if line.startswith("#"):
                continue
            break
        out.setdefault(match.group(1), []).append(match.group(2).strip())
    return out


def diagnostics(path: Path) -> list[str]:
    sets = dict(item.split("=", 1) for item in directives(path).get("set", []))
    result, plan = build_plan(path, sets, None)
    found = list(result.diagnostics) + (lint(result) if plan is not None else [])
    lines = []
    for d in found:
        where = "-"
        if d.span:
            prefix = "" if Path(d.span.file).name == path.name else f"{Path(d.span.file).name}:"
            where = f"{prefix}{d.span.line}:{d.span.col}-{d.span.end_line}:{d.span.end_col}"
        message = d.message.replace(f"{ROOT}/", "")  # golden lines do not depend on the checkout's folder
        lines.append(f"{d.severity} {d.code} {where} {message}")
    return lines


def key(line: str) -> tuple[str, str, str]:
    severity, code, where, *_ = line.split(" ", 3) + [""]
    return severity, code, where
