"""Text -> AST. Lark LALR with positions; syntax errors are collected, not just the first.

Recovery: after a syntax error the parser restarts at the next line that begins (in column 1) with a
top-level keyword, with the text before it replaced by blank lines so that every position stays exact.
"""
from __future__ import annotations

import ast as pyast
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .diagnostics import Reporter
from .source import SourceFile, Span

MAX_SOURCE_BYTES = 4_000_000
CHUNK_ABOVE = 100  # top-level statements above which a file is parsed statement by statement
MAX_NESTING = 64
UNITS = {
    # durations, normalised to seconds
    "s": ("duration", 1), "sec": ("duration", 1), "min": ("duration", 60), "h": ("duration", 3600),
    "d": ("duration", 86400),
    # memory, normalised to GiB
    "MiB": ("memory", 1 / 1024), "GiB": ("memory", 1), "TiB": ("memory", 1024),
    "MB": ("memory", 1e6 / 2**30), "GB": ("memory", 1e9 / 2**30), "TB": ("memory", 1e12 / 2**30),
    # video resolution by height
    "p": ("resolution", 1),
    # counts
    "k": ("count", 1e3), "K": ("count", 1e3), "M": ("count", 1e6), "B": ("count", 1e9),
}
DECL_KINDS = ("model", "dataset", "reward", "cluster", "stage")
TOP_LEVEL = re.compile(r"^(use|let|param|model|dataset|reward|cluster|stage|iterate)\b", re.M)
TOKEN_NAMES = {
    "NAME": "a name", "NUMBER": "a number", "QUANTITY": "a number with a unit", "STRING": "a string",
    "LBRACE": "`{`", "RBRACE": "`}`", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`",
    "EQUAL": "`=`", "COMMA": "`,`", "DOT": "`.`", "$END": "end of input",
    "ADD_OP": "`+` or `-`", "MUL_OP": "`*` or `/`", "COMP_OP": "a comparison", "MINUS": "`-`",
}


@lru_cache(maxsize=None)
def _lark() -> Lark:
    grammar = (Path(__file__).parent / "grammar" / "vpo.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True,
                start=["start", "items"], cache=_cache_file(grammar))


def _cache_file(grammar: str) -> str | bool:
    """Lark's parse tables cached per grammar version in the user's cache folder (cold start: ~0.1 s)."""
    import hashlib
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vpo"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return str(base / f"lark-{hashlib.sha256(grammar.encode()).hexdigest()[:16]}.pickle")


def parse(source: SourceFile, reporter: Reporter) -> ast.Module:
    """Parse a whole file; every syntax error goes to the reporter; returns what could be parsed."""
    if len(source.text.encode("utf-8", "surrogateescape")) > MAX_SOURCE_BYTES:
        reporter.add("E0006", f"the file is larger than {MAX_SOURCE_BYTES // 1_000_000} MB",
                     source.span_at(1, 1))
        return ast.Module(source.span_at(1, 1), None, (), ())
    if "\x00" in source.text:
        reporter.add("E0001", "the file contains NUL bytes; is it a binary file?", source.span_at(1, 1))
        return ast.Module(source.span_at(1, 1), None, (), ())
    if not _nesting_ok(source, reporter):
        return ast.Module(source.span_at(1, 1), None, (), ())
    comments = tuple(_comments(source.text))
    builder = _Builder(source, reporter)
    chunked = _parse_large(source, builder) if len(TOP_LEVEL.findall(source.text)) > CHUNK_ABOVE else None
    try:
        header, items = chunked if chunked is not None else builder.transform(_lark().parse(source.text, start="start"))
    except UnexpectedInput:
        header, items = _parse_chunks(source, builder, reporter)
    except RecursionError:
        reporter.add("E0006", "the expression is nested too deeply", source.span_at(1, 1))
        header, items = None, []
    items = sorted(items, key=lambda it: (it.span.line, it.span.col))
    end = Span(source.name, 1, 1, max(1, len(source.lines)), 1)
    return ast.Module(end, header, tuple(items), comments)


def _parse_large(source: SourceFile, builder: "_Builder"):
    """Long files parse statement by statement: Lark's position propagation makes one parse of many
    top-level items quadratic. If any chunk fails (a statement split wrongly, or a real syntax error),
    None: the caller parses the whole file and reports errors as usual."""
    scratch = Reporter()
    header, items = _parse_chunks(source, builder, scratch)
    return None if scratch.diagnostics else (header, items)


def _parse_chunks(source: SourceFile, builder: "_Builder", reporter: Reporter):
    """Error recovery: each top-level statement (a line starting in column 1 with a keyword, up to the
    next one) is parsed on its own, padded with newlines so positions stay exact; every chunk's first
    syntax error is reported and the others still parse."""
    text = source.text
    starts = sorted({0} | {m.start() for m in TOP_LEVEL.finditer(text)})
    header, items = None, []
    lines_before, previous = 0, 0
    for i, begin in enumerate(starts):
        if len(reporter.diagnostics) >= reporter.limit:
            break  # a file of garbage: enough has been said
        lines_before += text.count("\n", previous, begin)
        previous = begin
        chunk = text[begin: starts[i + 1] if i + 1 < len(starts) else len(text)]
        padded = "\n" * lines_before + chunk
        rule = "start" if begin == 0 else "items"
        try:
            tree = _lark().parse(padded, start=rule)
        except UnexpectedInput as err:
            _report_syntax(err, source, reporter)
            continue
        except RecursionError:
            reporter.add("E0006", "the expression is nested too deeply", source.span_at(1, 1))
            continue
        part = builder.transform(tree)
        if rule == "start":
            header, part = part
        items.extend(part)
    return header, items


def parse_expression(text: str, name: str, reporter: Reporter) -> ast.Expr | None:
    """Parse a lone expression (a `--set` value), reported against the pseudo-file `name`."""
    source = SourceFile(name, f"let _ = {text}")
    module = parse(source, reporter)
    if module.items and isinstance(module.items[0], ast.Let):
        return module.items[0].value
    return None


def _nesting_ok(source: SourceFile, reporter: Reporter) -> bool:
    depth, line, col = 0, 1, 0
    in_str = in_comment = False
    for ch in source.text:
        col += 1
        if ch == "\n":
            line, col, in_comment = line + 1, 0, False
            continue
        if in_comment:
            continue
        if ch == '"':
            in_str = not in_str
        elif not in_str and ch == "#":
            in_comment = True
        elif not in_str and ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                reporter.add("E0006", f"brackets nested more than {MAX_NESTING} deep",
                             source.span_at(line, col), hint="split the expression with `let`")
                return False
        elif not in_str and ch in ")]}":
            depth = max(0, depth - 1)
    return True


def _comments(text: str):
    for lineno, line in enumerate(text.split("\n"), 1):
        idx = _comment_start(line)
        if idx is not None:
            yield (lineno, idx + 1, line[idx:].rstrip())


def _comment_start(line: str) -> int | None:
    in_str, esc = False, False
    for i, ch in enumerate(line):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "#":
            return i
    return None


def _report_syntax(err: UnexpectedInput, source: SourceFile, reporter: Reporter) -> None:
    if isinstance(err, UnexpectedEOF):
        last = max(1, len(source.lines))
        col = len(source.line_text(last)) + 1
        expected = _expected(err.expected)
        reporter.add("E0004", "unexpected end of input", source.span_at(last, col),
                     hint=f"expected {expected}" if expected else "a bracket or block is not closed")
        return
    line, col = err.line or 1, err.column or 1
    if isinstance(err, UnexpectedCharacters):
        ch = source.line_text(line)[col - 1:col] or "?"
        hint = None
        if ch == '"':
            hint = "strings must close on the same line"
        elif ch == "'":
            hint = "strings use double quotes"
        reporter.add("E0003", f"unexpected character {ch!r}", source.span_at(line, col), hint=hint)
        return
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    shown = "end of input" if tok.type == "$END" else f"`{tok}`"
    expected = _expected(err.expected)
    hint = f"expected {expected}" if expected else None
    if tok.type == "EQUAL" and "NAME" not in err.expected:
        hint = "a field name must come before `=`" if hint is None else hint
    if tok.type == "$END":
        reporter.add("E0004", "unexpected end of input", source.span_at(line, col), hint=hint)
        return
    reporter.add("E0002", f"unexpected {shown}", source.span_at(line, col, len(str(tok))), hint=hint)


def _expected(names) -> str:
    shown = sorted({TOKEN_NAMES.get(n, f"`{n.lower()}`" if not n.startswith("__") else "") for n in names} - {""})
    if not shown:
        return ""
    if len(shown) > 6:
        shown = shown[:6] + ["..."]
    return ", ".join(shown)


def _span(source: SourceFile, meta_or_tok) -> Span:
    m = meta_or_tok
    if isinstance(m, Token):
        return Span(source.name, m.line, m.column, m.end_line, m.end_column)
    return Span(source.name, m.line, m.column, m.end_line, m.end_column)


class _Builder(Transformer):
    """Lark tree -> ast nodes. Number, unit and string errors are reported here."""

    def __init__(self, source: SourceFile, reporter: Reporter):
        super().__init__()
        self.src = source
        self.rep = reporter

    def sp(self, x) -> Span:
        return _span(self.src, x)

    # ---- file structure
    @v_args(meta=True)
    def start(self, meta, children):
        header = children[0] if children and isinstance(children[0], ast.Header) else None
        items = [c for c in children if not isinstance(c, ast.Header)]
        return header, items

    def items(self, children):
        return list(children)

    @v_args(meta=True)
    def header(self, meta, children):
        return ast.Header(self.sp(meta), str(children[0]))

    def dotted(self, children):
        return [str(c) for c in children]

    @v_args(meta=True)
    def use_module(self, meta, children):
        alias = children[1] if len(children) > 1 else None
        return ast.UseModule(self.sp(meta), tuple(children[0]), str(alias) if alias else None,
                             self.sp(alias) if alias else None)

    @v_args(meta=True)
    def use_file(self, meta, children):
        path_tok, alias = children[0], children[1]
        pin = self._string(children[2]) if len(children) > 2 and children[2] is not None else None
        return ast.UseFile(self.sp(meta), self._string(path_tok), self.sp(path_tok), str(alias),
                           self.sp(alias), pin)

    @v_args(meta=True)
    def let(self, meta, children):
        return ast.Let(self.sp(meta), str(children[0]), self.sp(children[0]), children[1])

    @v_args(meta=True)
    def param(self, meta, children):
        return ast.Param(self.sp(meta), str(children[0]), self.sp(children[0]), children[1])

    @v_args(meta=True)
    def decl(self, meta, children):
        kind, name, value = children[0], children[1], children[2]
        if str(kind) not in DECL_KINDS:
            from .diagnostics import did_you_mean
            guess = did_you_mean(str(kind), DECL_KINDS)
            self.rep.add("E0002", f"unknown declaration keyword `{kind}`", self.sp(kind),
                         hint=f"did you mean `{guess}`?" if guess else "declarations start with "
                         + ", ".join(f"`{k}`" for k in DECL_KINDS))
        on = body = None
        for extra in children[3:]:
            if isinstance(extra, ast.Name):
                on = extra
            elif isinstance(extra, ast.Body):
                body = extra
        return ast.Decl(self.sp(meta), str(kind), str(name), self.sp(name), value, on, body)

    @v_args(meta=True)
    def on_clause(self, meta, children):
        return ast.Name(self.sp(children[0]), str(children[0]))

    @v_args(meta=True)
    def body(self, meta, children):
        fields = tuple(c for c in children if isinstance(c, ast.Field))
        mods = tuple(c for c in children if isinstance(c, ast.Modifier))
        return ast.Body(self.sp(meta), fields, mods)

    @v_args(meta=True)
    def field(self, meta, children):
        return ast.Field(self.sp(meta), str(children[0]), self.sp(children[0]), children[1])

    @v_args(meta=True)
    def modifier(self, meta, children):
        return ast.Modifier(self.sp(meta), str(children[0]), self.sp(children[0]), tuple(children[1:]))

    @v_args(meta=True)
    def iterate(self, meta, children):
        name, var, init, rounds = children[:4]
        return ast.Iterate(self.sp(meta), str(name), self.sp(name), str(var), self.sp(var), init, rounds,
                           tuple(children[4:]))

    @v_args(meta=True)
    def next(self, meta, children):
        return ast.Next(self.sp(meta), str(children[0]), self.sp(children[0]), children[1])

    # ---- expressions
    @v_args(meta=True)
    def or_chain(self, meta, children):
        return self._chain(children, "or")

    @v_args(meta=True)
    def and_chain(self, meta, children):
        return self._chain(children, "and")

    def _chain(self, children, op):
        node = children[0]
        for right in children[1:]:
            node = ast.Binary(node.span.cover(right.span), op, node, right)
        return node

    @v_args(meta=True)
    def not_op(self, meta, children):
        return ast.Unary(self.sp(meta), "not", children[0])

    @v_args(meta=True)
    def compare(self, meta, children):
        if len(children) == 1:
            return children[0]
        left, op, right = children
        return ast.Compare(self.sp(meta), str(op), left, right)

    @v_args(meta=True)
    def arith(self, meta, children):
        node = children[0]
        for i in range(1, len(children), 2):
            right = children[i + 1]
            node = ast.Binary(node.span.cover(right.span), str(children[i]), node, right)
        return node

    @v_args(meta=True)
    def neg(self, meta, children):
        return ast.Unary(self.sp(meta), "-", children[0])

    @v_args(meta=True)
    def attr(self, meta, children):
        return ast.Attr(self.sp(meta), children[0], str(children[1]), self.sp(children[1]))

    @v_args(meta=True)
    def index(self, meta, children):
        return ast.Index(self.sp(meta), children[0], children[1])

    @v_args(meta=True)
    def call(self, meta, children):
        func, args = children[0], children[1]
        return ast.Call(self.sp(meta), func, tuple(args or ()))

    def args(self, children):
        return [c if isinstance(c, ast.Arg) else ast.Arg(c.span, None, c) for c in children]

    @v_args(meta=True)
    def kwarg(self, meta, children):
        return ast.Arg(self.sp(meta), str(children[0]), children[1])

    @v_args(meta=True)
    def list(self, meta, children):
        return ast.ListExpr(self.sp(meta), tuple(c for c in children if c is not None))

    def number(self, children):
        tok = children[0]
        return ast.Number(self.sp(tok), _to_number(str(tok)), str(tok))

    def quantity(self, children):
        tok = children[0]
        text = str(tok)
        match = re.match(r"^((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)(.*)$", text)
        number, unit = match.group(1), match.group(5)
        if unit not in UNITS:
            known = ", ".join(sorted(UNITS))
            from .diagnostics import did_you_mean
            guess = did_you_mean(unit, UNITS)
            self.rep.add("E0005", f"unknown unit `{unit}` in `{text}`", self.sp(tok),
                         hint=f"did you mean `{number}{guess}`?" if guess else f"units: {known}")
        return ast.Quantity(self.sp(tok), _to_number(number), unit, text)

    def string(self, children):
        tok = children[0]
        return ast.String(self.sp(tok), self._string(tok), str(tok))

    def _string(self, tok) -> str:
        if _bad_escape(str(tok)[1:-1]):
            self.rep.add("E0008", "invalid escape sequence in string", self.sp(tok),
                         hint='escapes: \\\\ \\" \\n \\t \\r \\uXXXX')
            return str(tok)[1:-1]
        try:
            return pyast.literal_eval(str(tok))
        except (ValueError, SyntaxError):
            self.rep.add("E0008", "invalid escape sequence in string", self.sp(tok),
                         hint='use \\\\ for a backslash and \\" for a quote')
            return str(tok)[1:-1]

    @v_args(meta=True)
    def true(self, meta, children):
        return ast.Bool(self.sp(meta), True)

    @v_args(meta=True)
    def false(self, meta, children):
        return ast.Bool(self.sp(meta), False)

    def name(self, children):
        tok = children[0]
        return ast.Name(self.sp(tok), str(tok))

    def __default__(self, data, children, meta):
        return Tree(data, children, meta)


def _bad_escape(body: str) -> bool:
    """Only \\\\, \\", \\n, \\t, \\r, \\0 and \\uXXXX are escapes in vpo strings."""
    i = 0
    while i < len(body):
        if body[i] == "\\":
            nxt = body[i + 1:i + 2]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6] or ""):
                i += 6
                continue
            if nxt not in ("\\", '"', "n", "t", "r", "0"):
                return True
            i += 2
            continue
        i += 1
    return False


def _to_number(text: str) -> float | int:
    if re.fullmatch(r"\d+", text):
        return int(text)
    return float(text)
