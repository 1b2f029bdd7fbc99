"""The compiler's public entry points: check a recipe, compile it to a plan. No heavy imports."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .check import Checker, CheckedRecipe
from .datacheck import preflight as data_preflight
from .diagnostics import CompileError, Diagnostic, Reporter
from .source import SourceFile, Span, UnreadableSource, decode_error_position, read_limited
from .values import DeclValue


ErrorLevel = Literal["collect", "raise", "strict"]  # sqlglot's policy: collect, raise once, warnings too


@dataclass
class CheckResult:
    recipe: CheckedRecipe | None
    diagnostics: list[Diagnostic]
    sources: dict[str, SourceFile]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def obey(self, level: ErrorLevel) -> CheckResult:
        """`collect` returns the result as is; `raise` raises one CompileError carrying every diagnostic when
        there is an error; `strict` also when there is a warning."""
        if level not in ("collect", "raise", "strict"):
            raise ValueError(f"error level {level!r}: use collect, raise or strict")
        failing = {"collect": (), "raise": ("error",), "strict": ("error", "warning")}[level]
        if any(d.severity in failing for d in self.diagnostics):
            raise CompileError(self.diagnostics)
        return self


def read_source(path: str | Path, display: str | None = None) -> tuple[SourceFile | None, Diagnostic | None]:
    """Read a recipe file as UTF-8; a large, binary or undecodable file is a diagnostic, not a crash."""
    p = Path(path)
    name = display or str(path)
    try:
        data = read_limited(p)
    except UnreadableSource as exc:
        return None, Diagnostic(exc.code, f"cannot read `{name}`: {exc}", Span(name, 1, 1, 1, 2))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = decode_error_position(data, exc.start)
        return None, Diagnostic("E0001", f"`{name}` is not UTF-8 text (byte {exc.start}: 0x{data[exc.start]:02x})",
                                Span(name, line, col, line, col + 1))
    return SourceFile(name, text, p.resolve()), None


def check_source(source: SourceFile, overrides: dict[str, str] | None = None,
                 root_dir: Path | None = None, error_level: ErrorLevel = "collect") -> CheckResult:
    return _check_source(source, overrides, root_dir).obey(error_level)


def _check_source(source: SourceFile, overrides: dict[str, str] | None, root_dir: Path | None) -> CheckResult:
    reporter = Reporter()
    root = root_dir or (source.path.parent if source.path else None)
    checker = Checker(reporter, root, overrides)
    recipe = checker.check(source)
    if not reporter.errors:
        _preflight(recipe, checker, root, reporter)
    if not reporter.errors and root is not None:  # the data is checked once the recipe itself is right
        for diag in data_preflight(recipe, root):
            reporter.add(diag.code, diag.message, diag.span, diag.hint, diag.notes)
    sources = dict(checker.loader.sources)
    return CheckResult(recipe if not reporter.errors else None, reporter.sorted(), sources)


def _preflight(recipe: CheckedRecipe, checker: Checker, root: Path | None, reporter: Reporter) -> None:
    """After schema checking: what a trainer or loader would refuse when the job starts (vpolang/preflight)."""
    from .preflight import Preflight, preflight

    main = next((s for s in checker.loader.cache.values() if not s.is_stdlib and s.source is recipe.source), None)
    decls = {name: sym.value for name, sym in (main.symbols.items() if main else ())
             if isinstance(sym.value, DeclValue)}
    for d in preflight(Preflight(recipe, root, decls)):
        reporter.add(d.code, d.message, d.span, d.hint, d.notes)


def check_file(path: str | Path, overrides: dict[str, str] | None = None,
               error_level: ErrorLevel = "collect") -> CheckResult:
    """Check a recipe file. API callers choose what a mistake does (`error_level`): collect the
    diagnostics in the result (the CLI's way), or raise one CompileError carrying all of them."""
    source, diag = read_source(path)
    if source is None:
        return CheckResult(None, [diag], {}).obey(error_level)
    return check_source(source, overrides, error_level=error_level)
