"""Text -> AST. Lark LALR with positions; syntax errors are collected, not just the first.

Recovery: after a syntax error the parser restarts at the next line that begins (in column 1) with a
top-level keyword, with the text before it replaced by blank lines so that every position stays exact.
"""
from __future__ import annotations

import ast as pyast
import math
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .diagnostics import Reporter
from .source import MAX_SOURCE_BYTES, SourceFile, Span

CHUNK_ABOVE = 100  # top-level statements above which a file is parsed statement by statement
MAX_NESTING = 64
MAX_NUMBER_CHARS = 64  # one number literal, unit included: 10**4300 broke int(), 1e400 is infinite
MAX_STRING_CHARS = 65_536  # one string literal: a 3.9 MB one cost Lark and literal_eval 1.8 GB
MAX_OPERANDS = 200  # operands of one flat chain (`a + b + ...`): the tree is that deep for the evaluator
MERGE_TRIES = 3  # a chunk that fails is retried joined with up to this many following chunks
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
    if len(source.text) > MAX_SOURCE_BYTES or len(source.text.encode("utf-8", "surrogateescape")) > MAX_SOURCE_BYTES:
        reporter.add("E0006", f"the file is larger than {MAX_SOURCE_BYTES // 1_000_000} MB",
                     source.span_at(1, 1), hint="split the recipe into files joined with `use`")
        return ast.Module(source.span_at(1, 1), None, (), ())
    if "\x00" in source.text:
        line, col = _position(source.text, source.text.index("\x00"))
        reporter.add("E0001", "the file contains NUL bytes; is it a binary file?", source.span_at(line, col),
                     hint="a recipe is UTF-8 text")
        return ast.Module(source.span_at(1, 1), None, (), ())
    if not _prescan_ok(source, reporter):
        return ast.Module(source.span_at(1, 1), None, (), ())
    comments = tuple(_comments(source.text))
    builder = _Builder(source, reporter)
    if len(TOP_LEVEL.findall(source.text)) > CHUNK_ABOVE:
        # Long files parse statement by statement: Lark's position propagation makes one parse of many
        # top-level items quadratic, and a syntax error would make it parse the file twice.
        header, items = _parse_chunks(source, builder, reporter)
    else:
        try:
            header, items = builder.transform(_lark().parse(source.text, start="start"))
        except UnexpectedInput:
            header, items = _parse_chunks(source, builder, reporter)
        except RecursionError:
            reporter.add("E0006", "the expression is nested too deeply", source.span_at(1, 1),
                         hint="split the expression with `let`")
            header, items = None, []
    items = sorted(items, key=lambda it: (it.span.line, it.span.col))
    end = Span(source.name, 1, 1, max(1, len(source.lines)), 1)
    return ast.Module(end, header, tuple(items), comments)


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _parse_chunks(source: SourceFile, builder: "_Builder", reporter: Reporter):
    """Statement by statement: each top-level statement (a line starting in column 1 with a keyword, up
    to the next one) is parsed on its own and its spans shifted by the lines above it, so that the work
    is linear in the file. A chunk that fails is retried joined with the next few (a statement split
    at a continuation line that happens to start with a keyword); if none parses, its first syntax error
    is reported and the following chunks still parse."""
    text = source.text
    starts = sorted({0} | {m.start() for m in TOP_LEVEL.finditer(text)}) + [len(text)]
    header, items = None, []
    i, offset, counted = 0, 0, 0  # offset: newlines before starts[i], counted up to `counted` (linear)
    while i < len(starts) - 1:
        if len(reporter.diagnostics) >= reporter.limit:
            break  # a file of garbage: enough has been said
        begin = starts[i]
        offset, counted = offset + text.count("\n", counted, begin), begin
        rule = "start" if begin == 0 else "items"
        tree, first_error, used = None, None, 1
        for used in range(1, MERGE_TRIES + 2):
            if i + used >= len(starts):
                break
            try:
                tree = _lark().parse(text[begin:starts[i + used]], start=rule)
                break
            except UnexpectedInput as err:
                first_error = first_error or err
            except RecursionError:
                reporter.add("E0006", "the expression is nested too deeply", source.span_at(offset + 1, 1),
                             hint="split the expression with `let`")
                break
        if tree is None:
            if first_error is not None:
                _report_syntax(first_error, source, reporter, offset, text[begin:starts[i + 1]])
            i += 1
            continue
        builder.line_offset = offset
        try:
            part = builder.transform(tree)
        finally:
            builder.line_offset = 0
        if rule == "start":
            header, part = part
        items.extend(part)
        i += used
    return header, items


def parse_expression(text: str, name: str, reporter: Reporter) -> ast.Expr | None:
    """Parse a lone expression (a `--set` value), reported against the pseudo-file `name`; None unless
    the whole text is exactly one expression (`1 let y = 2` parsed as two items, and the second was dropped)."""
    source = SourceFile(name, f"let _ = {text}")
    scratch = Reporter()
    module = parse(source, scratch)
    for diag in scratch.diagnostics:
        reporter.add(diag.code, diag.message, diag.span, diag.hint, diag.notes)
    if scratch.errors or module.header is not None or len(module.items) != 1 \
            or not isinstance(module.items[0], ast.Let):
        return None
    return module.items[0].value


# What the lexer skips or takes whole: strings (escaped quotes included), comments; then brackets, newlines.
_SCAN = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|#[^\n]*|[()\[\]{}]|\n')


def _prescan_ok(source: SourceFile, reporter: Reporter) -> bool:
    """Before Lark: brackets nested at most MAX_NESTING deep (deeper ones overflow the transformer's
    recursion) and strings at most MAX_STRING_CHARS long."""
    depth, line, line_start = 0, 1, 0
    for match in _SCAN.finditer(source.text):
        tok = match.group()
        if tok == "\n":
            line, line_start = line + 1, match.end()
            continue
        col = match.start() - line_start + 1
        if tok[0] == '"':
            if len(tok) > MAX_STRING_CHARS:
                reporter.add("E0009", f"a string literal longer than {MAX_STRING_CHARS:,} characters",
                             source.span_at(line, col), hint="keep long text in a data file the recipe names")
                return False
        elif tok[0] in "([{":
            depth += 1
            if depth > MAX_NESTING:
                reporter.add("E0006", f"brackets nested more than {MAX_NESTING} deep",
                             source.span_at(line, col), hint="split the expression with `let`")
                return False
        elif tok[0] in ")]}":
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


def _report_syntax(err: UnexpectedInput, source: SourceFile, reporter: Reporter, offset: int = 0,
                   chunk: str | None = None) -> None:
    """One syntax error; `offset` is the number of lines above the chunk that was parsed."""
    if isinstance(err, UnexpectedEOF):
        last = offset + chunk.rstrip("\n").count("\n") + 1 if chunk is not None else max(1, len(source.lines))
        col = len(source.line_text(last)) + 1
        expected = _expected(err.expected)
        reporter.add("E0004", "unexpected end of input", source.span_at(last, col),
                     hint=f"expected {expected}" if expected else "a bracket or block is not closed")
        return
    line, col = (err.line or 1) + offset, err.column or 1
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


def _span(source: SourceFile, meta_or_tok, line_offset: int = 0) -> Span:
    m = meta_or_tok
    return Span(source.name, m.line + line_offset, m.column, m.end_line + line_offset, m.end_column)


class _Builder(Transformer):
    """Lark tree -> ast nodes. Number, unit and string errors are reported here."""

    def __init__(self, source: SourceFile, reporter: Reporter):
        super().__init__()
        self.src = source
        self.rep = reporter
        self.line_offset = 0  # lines above the chunk being transformed

    def sp(self, x) -> Span:
        return _span(self.src, x, self.line_offset)

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
        name, rest = children[0], children[1:]
        loop_vars = tuple(c for c in rest if isinstance(c, ast.IterVar))
        rounds, *items = rest[len(loop_vars):]
        return ast.Iterate(self.sp(meta), str(name), self.sp(name), loop_vars, rounds, tuple(items))

    @v_args(meta=True)
    def iter_var(self, meta, children):
        return ast.IterVar(self.sp(meta), str(children[0]), self.sp(children[0]), children[1])

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
        if not self._few_operands(children, len(children)):
            return children[0]
        node = children[0]
        for right in children[1:]:
            node = ast.Binary(node.span.cover(right.span), op, node, right)
        return node

    def _few_operands(self, children, count: int) -> bool:
        if count <= MAX_OPERANDS:
            return True
        self.rep.add("E0006", f"{count} operands in one expression, more than {MAX_OPERANDS}",
                     children[0].span.cover(children[-1].span), hint="split the expression with `let`")
        return False

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
        if not self._few_operands(children, (len(children) + 1) // 2):
            return children[0]
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
        return ast.Number(self.sp(tok), self._literal(tok, str(tok)), str(tok))

    def _literal(self, tok, digits: str) -> float | int | None:
        """The value of a number literal, bounded: too long or infinite is E0009 and None (the evaluator
        then drops the field silently instead of reporting a second error about a stand-in value)."""
        if len(str(tok)) > MAX_NUMBER_CHARS:
            self.rep.add("E0009", f"a number literal longer than {MAX_NUMBER_CHARS} characters", self.sp(tok),
                         hint="write large numbers with an exponent, e.g. `1e12`")
            return None
        value = _to_number(digits)
        if isinstance(value, float) and not math.isfinite(value):
            self.rep.add("E0009", f"`{tok}` is out of range (numbers are at most about 1.8e308)", self.sp(tok),
                         hint="use a smaller exponent")
            return None
        return value

    def quantity(self, children):
        tok = children[0]
        text = str(tok)
        match = re.match(r"^(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)(.*)$", text)
        number, unit = match.group(1), match.group(5)
        if unit not in UNITS:
            known = ", ".join(sorted(UNITS))
            from .diagnostics import did_you_mean
            guess = did_you_mean(unit, UNITS)
            self.rep.add("E0005", f"unknown unit `{unit}` in `{text}`", self.sp(tok),
                         hint=f"did you mean `{number}{guess}`?" if guess else f"units: {known}")
        return ast.Quantity(self.sp(tok), self._literal(tok, number), unit, text)

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
