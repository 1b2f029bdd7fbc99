"""Loading modules: the recipe, stdlib modules (package data) and local files, with their scopes."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ast
from .diagnostics import Note, Reporter, did_you_mean
from .parser import parse
from .source import SourceFile, Span, UnreadableSource, decode_error_position, read_limited

STDLIB_DIR = Path(__file__).resolve().parent.parent / "stdlib"


def stdlib_modules() -> list[str]:
    return sorted(p.stem for p in STDLIB_DIR.glob("*.vpo"))


@dataclass
class Symbol:
    name: str
    node: Any  # ast item
    module: "ModuleScope"
    state: str = "new"  # new | busy | done
    value: Any = None
    used: bool = False


@dataclass
class ModuleScope:
    name: str  # "std.models", or the file's display path
    source: SourceFile
    tree: ast.Module
    is_stdlib: bool
    symbols: dict[str, Symbol] = field(default_factory=dict)
    root_dir: Path | None = None


_STDLIB_TREES: dict[tuple[str, str], ast.Module] = {}


def _parse_stdlib(source: SourceFile, rep: Reporter) -> ast.Module:
    """The standard library is parsed once per process: `vpo lint` of many recipes, and the language
    server-like uses, would otherwise re-parse it for every file (it was two thirds of the parse time).
    The tree is immutable; a module that parsed with diagnostics is not cached, so they repeat."""
    key = (source.name, source.text)
    if key not in _STDLIB_TREES:
        before = len(rep.diagnostics)
        tree = parse(source, rep)
        if len(rep.diagnostics) == before:
            _STDLIB_TREES[key] = tree
        return tree
    return _STDLIB_TREES[key]


class ModuleLoader:
    """Parses each module once; detects import cycles; confines local imports to the recipe's tree."""

    def __init__(self, reporter: Reporter, root_dir: Path | None):
        self.rep = reporter
        self.root_dir = root_dir.resolve() if root_dir else None
        self.cache: dict[str, ModuleScope] = {}
        self.loading: list[str] = []
        self.sources: dict[str, SourceFile] = {}

    def load_source(self, source: SourceFile, name: str, is_stdlib: bool) -> ModuleScope:
        self.sources[source.name] = source
        tree = _parse_stdlib(source, self.rep) if is_stdlib else parse(source, self.rep)
        self._check_header(tree, source)
        scope = ModuleScope(name, source, tree, is_stdlib, root_dir=self.root_dir)
        self._collect(scope)
        self.cache[name] = scope
        # Local imports load eagerly (while this file is on the loading stack) so that a cycle between
        # files is found whether or not the names involved are used.
        for item in tree.items:
            if isinstance(item, ast.UseFile):
                self.local(item, scope)
        return scope

    def stdlib(self, dotted: tuple[str, ...], span: Span) -> ModuleScope | None:
        name = ".".join(dotted)
        if name in self.cache:
            return self.cache[name]
        if len(dotted) != 2 or dotted[0] != "std" or dotted[1] not in stdlib_modules():
            options = [f"std.{m}" for m in stdlib_modules() if m != "prelude"]
            guess = did_you_mean(name, options)
            self.rep.add("E0104", f"no standard-library module `{name}`", span,
                         hint=f"did you mean `{guess}`?" if guess else "available: " + ", ".join(options))
            return None
        path = STDLIB_DIR / f"{dotted[1]}.vpo"
        return self._guarded(name, span, lambda: self.load_source(
            SourceFile(f"<{name}>", path.read_text(), path), name, True))

    def local(self, node: ast.UseFile, importer: ModuleScope) -> ModuleScope | None:
        """A file import. Outside the recipe's tree it is refused whatever its pin, before the file is even
        looked at: no diagnostic may reveal whether such a file exists, its digest or its lines (CI logs
        of untrusted recipes are public)."""
        base = importer.source.path.parent if importer.source.path else Path.cwd()
        root = self.root_dir or base.resolve()
        path = (base / node.path).resolve()
        if not path.is_relative_to(root):
            self.rep.add("E0105", f"`{node.path}` is outside the recipe's directory tree", node.path_span,
                         hint="copy the file into the recipe's directory (or below it) and import it from there")
            return None
        if not path.is_file():
            self.rep.add("E0105", f"cannot find `{node.path}`", node.path_span,
                         hint=f"looked for {_display_path(path)}")
            return None
        key = str(path)
        if key in self.loading:
            chain = " -> ".join(Path(k).name for k in self.loading[self.loading.index(key):] + [key])
            self.rep.add("E0106", f"import cycle: {chain}", node.path_span)
            return None
        if key in self.cache:
            return self.cache[key]
        try:
            data = read_limited(path)
        except UnreadableSource as exc:
            self.rep.add(exc.code, f"cannot read `{node.path}`: {exc}", node.path_span)
            return None
        digest = hashlib.sha256(data).hexdigest()
        if node.sha256 is not None and node.sha256.lower() != digest:
            self.rep.add("E0110", f"`{node.path}` has sha256 {digest}, not the pinned {node.sha256}",
                         node.path_span, hint="the shared file changed: review it, then update the pin")
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, col = decode_error_position(data, exc.start)
            self.rep.add("E0001", f"`{node.path}` is not UTF-8 text (line {line}, column {col})", node.path_span)
            return None
        display = _display_path(path)
        return self._guarded(key, node.path_span, lambda: self.load_source(
            SourceFile(display, text, path), key, False))

    def _guarded(self, key: str, span: Span, load):
        if key in self.loading:
            chain = " -> ".join(self.loading[self.loading.index(key):] + [key])
            self.rep.add("E0106", f"import cycle: {chain}", span)
            return None
        self.loading.append(key)
        try:
            return load()
        finally:
            self.loading.pop()

    def _check_header(self, tree: ast.Module, source: SourceFile) -> None:
        if tree.header is None:
            if tree.items or not source.text.strip():
                self.rep.add("E0007", "a recipe must start with `vpo 0.1`", source.span_at(1, 1),
                             hint="add `vpo 0.1` as the first line")
        elif tree.header.version not in ("0.1",):
            self.rep.add("E0007", f"unsupported language version `{tree.header.version}`", tree.header.span,
                         hint="this vpo reads `vpo 0.1`")

    def _collect(self, scope: ModuleScope) -> None:
        for item in scope.tree.items:
            name, span = _declared_name(item)
            if name is None:
                continue
            if name in scope.symbols:
                first = scope.symbols[name].node
                self.rep.add("E0102", f"`{name}` is declared twice", span,
                             notes=[Note("first declared here", _declared_name(first)[1])])
                continue
            scope.symbols[name] = Symbol(name, item, scope)


def _declared_name(item) -> tuple[str | None, Span | None]:
    if isinstance(item, ast.UseModule):
        return (item.alias or item.module[-1]), (item.alias_span or item.span)
    if isinstance(item, ast.UseFile):
        return item.alias, item.alias_span
    if isinstance(item, (ast.Let, ast.Param, ast.Decl, ast.Iterate)):
        return item.name, item.name_span
    return None, None


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
