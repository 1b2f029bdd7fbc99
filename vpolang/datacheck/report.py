"""Scans -> diagnostics at the recipe line of each dataset value (its declaration's `path` where it is a
declared dataset, else the stage field), with the data file and line as a note."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..diagnostics import Diagnostic, Note
from ..model_folder import not_a_diffusers_folder
from ..source import Span
from ..values import DeclValue, StageValue
from .cache import FILE_KINDS, scan_source
from .scan import Problem


def preflight(recipe, base: Path) -> list[Diagnostic]:
    """Every problem of the local data and model folders a checked recipe names, once each."""
    found: dict[tuple, Diagnostic] = {}
    shown_dir = Path(recipe.source.name).parent  # data files in notes are named as the recipe was
    for stage in recipe.stages:
        for path, node in _dicts(stage.config, ()):
            kind = node.get("kind")
            if kind in FILE_KINDS and isinstance(node.get("path"), str):
                for problem in scan_source(node, base).problems:
                    _keep(found, _diagnostic(problem, _span(node, problem.field, path, stage, recipe.decls),
                                             shown_dir))
            elif kind == "video_diffusion" and isinstance(node.get("path"), str) and node["path"]:
                diag = _model_folder(node, base, _span(node, "path", path, stage, recipe.decls))
                if diag:
                    _keep(found, diag)
    return list(found.values())


def _keep(found: dict[tuple, Diagnostic], diag: Diagnostic) -> None:
    found.setdefault((diag.code, diag.span, diag.message), diag)  # a dataset two stages use: said once


def _dicts(node, path: tuple) -> Iterator[tuple[tuple, dict]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _dicts(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _dicts(value, path + (i,))


def _span(node: dict, name: str, path: tuple, stage: StageValue, decls: list[DeclValue]) -> Span:
    """The declaration's `name` field when `node` is a declared value, else the closest stage span."""
    for decl in decls:
        if decl.spec == node:
            return decl.spans.get((name,)) or decl.spans.get(("path",)) or decl.span
    for end in range(len(path) + 1, 0, -1):
        key = (path + (name,))[:end]
        if key in stage.spans:
            return stage.spans[key]
    return stage.span


def _diagnostic(problem: Problem, span: Span, shown_dir: Path) -> Diagnostic:
    """Messages name data files as the recipe writes them; the note's file:line is usable from where
    `vpo` ran (the recipe's folder as the recipe was named, joined with the file's path)."""
    notes = ()
    if problem.file and problem.detail:
        line = problem.line or 1
        notes = (Note(problem.detail, Span(str(shown_dir / problem.file), line, 1, line, 1)),)
    return Diagnostic(problem.code, problem.message, span, problem.hint, notes)


def _model_folder(spec: dict, base: Path, span: Span) -> Diagnostic | None:
    """Where the folder is on this machine, it must be a diffusers folder (the family's own checks are
    the model preflight's)."""
    folder = Path(spec["path"]).expanduser()
    folder = folder if folder.is_absolute() else base / folder
    if not folder.exists():
        return None  # weights on the cluster only
    problem = not_a_diffusers_folder(folder, f"`{spec['path']}`")
    if problem is None:
        return None
    return Diagnostic("E0407", problem, span,
                      hint="point `path` at the folder `save_pretrained` wrote (it holds model_index.json)")
