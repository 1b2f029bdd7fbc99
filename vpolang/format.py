"""`vpo fmt`: the canonical layout of a recipe, without touching its meaning.

    format_source(text, name) -> str      raises FormatError (a ValueError) when the text has syntax errors

The formatter works on tokens, never on the syntax tree's values, so it cannot change what a recipe
says: only whitespace between tokens moves, and the result is re-parsed and compared with the input
(same tokens, same syntax tree ignoring spans) before it is returned. Every comment stays: own-line
comments are re-indented, trailing ones keep their column when there is room.

The style is the examples' style:
- one top-level item per line start; a `{ ... }` that spans lines has its members on their own lines
  and its `}` alone on the last one; two spaces of indentation per open bracket;
- one space around `=`, binary and comparison operators, after commas, inside `{ }`; none inside
  `( )` and `[ ]`, before `,`, around `.`, after a unary minus, before a call's `(` or an index's `[`;
- `=` aligned within a run of consecutive one-line fields of a block, and within a run of consecutive
  one-line top-level declarations of the same keyword; the `{` of consecutive one-line `with` blocks
  aligned likewise;
- an assignment whose line breaks all sit between top-level operands is re-flowed: on one line when it
  fits in MAX_WIDTH columns, else broken before each top-level `+`/`-` with the operator under the `=`
  (teleboost.vpo's `pairs`); breaks inside brackets are the author's and are kept;
- top-level items are separated by one blank line when either spans several lines, when their
  keywords differ, or when the author left one; inside blocks blank lines collapse to one and never
  follow `{` or precede `}`; the file ends with exactly one newline.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from . import ast
from .diagnostics import Diagnostic, Reporter
from .parser import _comment_start, parse
from .source import SourceFile, Span

MAX_WIDTH = 100
# ASCII classes as in the grammar: `\w` would glue a non-ASCII digit to a name (`vpo٣`) that the parser splits.
TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[A-Za-z0-9]*'
                   r'|[A-Za-z_][A-Za-z0-9_]*|>=|<=|==|!=|\S')
BINARY = {"+", "-", "*", "/", ">=", "<=", "==", "!=", ">", "<", "and", "or"}
# After these a `-` is a sign, not a subtraction.
EXPECTS_OPERAND = BINARY | {"=", "(", "[", ",", "{", "not", "rounds"}
DECL_KEYWORDS = {"model", "dataset", "reward", "cluster", "stage"}
NOT_CALLABLE = {"and", "or", "not", "rounds", "on", "as", "sha256", "with", "use", "let", "param", "next",
                "iterate", "vpo"}
OPENERS, CLOSERS = "([{", ")]}"


class FormatError(ValueError):
    """The text does not parse, so it has no canonical form; carries the syntax diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]):
        first = diagnostics[0]
        super().__init__(f"{first.span}: {first.message}; fix syntax errors before formatting")
        self.diagnostics = diagnostics


@dataclass
class Tok:
    text: str
    line: int  # 1-based line of the input
    col: int  # 1-based column of the input
    unary: bool = False  # a sign `-`, not a subtraction


@dataclass
class Line:
    """One output line: tokens and an optional trailing comment, or a comment alone, or nothing."""

    toks: list[Tok]
    comment: str | None = None
    comment_col: int = 0  # the comment's column in the input
    blank_before: bool = False  # the author left an empty line above it
    item: bool = False  # starts a top-level item
    stack: str = ""  # brackets open before its first token (after a leading closer is matched)
    indent: int | None = None  # set for continuation lines hung under an `=`
    head: tuple | None = None  # alignment key, for one-line statements
    text: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def code(self) -> bool:
        return bool(self.toks)

    @property
    def depth(self) -> int:
        return len(self.stack)


# ---- public API -------------------------------------------------------------------------------------
def format_source(text: str, name: str = "<recipe>") -> str:
    """The canonical layout of `text` (see the module docstring); idempotent."""
    text = text.replace("\r\n", "\n")
    module = _parse_or_raise(text, name)
    try:
        return _format_parsed(text, name, module)
    except RecursionError:  # a tree deeper than the parser's limits let through: refuse, do not crash
        raise FormatError([Diagnostic("E0006", "the recipe is nested too deeply to format", Span(name, 1, 1, 1, 2),
                                      "split long expressions with `let`")]) from None


def _format_parsed(text: str, name: str, module: ast.Module) -> str:
    lexed = _lex(text)
    lines = _split(lexed, _item_starts(module), _brace_breaks(lexed))
    _mark_depths(lines)
    lines = _reflow(lines)
    for line in lines:
        line.text = _render(line.toks)
    _align(lines)
    out = _assemble(lines)
    _verify(text, out, name, module)
    return out


def tokens_of(text: str) -> list[str]:
    """The token sequence of a recipe, comments and whitespace dropped: what formatting preserves."""
    return [t.text for line in _lex(text) for t in line[0]]


# ---- lexing and line splitting ----------------------------------------------------------------------
def _parse_or_raise(text: str, name: str) -> ast.Module:
    reporter = Reporter()
    module = parse(SourceFile(name, text), reporter)
    if reporter.errors:
        raise FormatError(reporter.errors)
    return module


def _lex(text: str) -> list[tuple[list[Tok], str | None, int]]:
    """Per input line: its tokens, its comment (or None) and the comment's column."""
    out = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        cut = _comment_start(raw)
        code = raw if cut is None else raw[:cut]
        toks = [Tok(m.group(), lineno, m.start() + 1) for m in TOKEN.finditer(code)]
        comment = None if cut is None else raw[cut:].rstrip()
        out.append((toks, comment, (cut or 0) + 1))
    prev = None
    for toks, _, _ in out:
        for tok in toks:
            tok.unary = tok.text == "-" and (prev is None or prev in EXPECTS_OPERAND)
            prev = tok.text
    return out


def _item_starts(module: ast.Module) -> set[tuple[int, int]]:
    """Where top-level items (and the items of iterate blocks) begin: each starts a line."""
    starts = set()
    if module.header is not None:
        starts.add((module.header.span.line, module.header.span.col))
    for item in module.items:
        starts.add((item.span.line, item.span.col))
        if isinstance(item, ast.Iterate):
            starts.update((sub.span.line, sub.span.col) for sub in item.items)
    return starts


def _brace_breaks(lexed) -> set[tuple[int, int]]:
    """Positions to break before: the token after a `{` whose `}` is on a later line, and that `}`."""
    toks = [tok for line in lexed for tok in line[0]]
    breaks, stack = set(), []
    for k, tok in enumerate(toks):
        if tok.text in OPENERS:
            stack.append(k)
        elif tok.text in CLOSERS and stack:
            a = stack.pop()
            if toks[a].text == "{" and toks[a].line != tok.line:
                breaks.add((tok.line, tok.col))
                if toks[a + 1].line == toks[a].line:
                    breaks.add((toks[a + 1].line, toks[a + 1].col))
    return breaks


def _split(lexed, starts: set, breaks: set) -> list[Line]:
    lines: list[Line] = []
    blank = False
    for toks, comment, comment_col in lexed:
        if not toks and comment is None:
            blank = True
            continue
        pieces: list[list[Tok]] = [[]]
        for tok in toks:
            if pieces[-1] and ((tok.line, tok.col) in starts or (tok.line, tok.col) in breaks):
                pieces.append([])
            pieces[-1].append(tok)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            lines.append(Line(piece, comment if last else None, comment_col, blank_before=blank and i == 0,
                              item=bool(piece) and (piece[0].line, piece[0].col) in starts))
        blank = False
    return lines


def _mark_depths(lines: list[Line]) -> None:
    """Each line's open brackets at its start; a line that starts by closing one sits outside it."""
    stack = ""
    for line in lines:
        start = stack
        if line.toks and line.toks[0].text in CLOSERS and start:
            start = start[:-1]
        line.stack = start
        for tok in line.toks:
            if tok.text in OPENERS:
                stack += tok.text
            elif tok.text in CLOSERS:
                stack = stack[:-1]
        line.extra["end_depth"] = len(stack)


# ---- statements: assignments and their continuation lines ------------------------------------------
def _assign_at(line: Line) -> int | None:
    """Index of the `=` when the line starts an assignment: a field in a block, or `let`/`param`/`next`."""
    t = [tok.text for tok in line.toks]
    in_block = line.stack == "" or line.stack.endswith("{")
    if not in_block or len(t) < 3:
        return None
    if t[1] == "=" and _is_name(t[0]) and (line.stack or t[0] not in DECL_KEYWORDS):
        return 1
    if t[0] in ("let", "param", "next") and t[2] == "=" and _is_name(t[1]):
        return 2
    return None


def _is_name(text: str) -> bool:
    return re.match(r"[A-Za-z_]", text) is not None


def _continues(prev: Line, line: Line, head: Line) -> bool:
    if not line.toks:
        return False
    if prev.extra["end_depth"] > head.depth:
        return True
    first, last = line.toks[0], prev.toks[-1] if prev.toks else None
    return (first.text in BINARY and not first.unary) or first.text == "." or \
        (last is not None and (last.text in BINARY or last.text == "="))


def _statement_end(lines: list[Line], i: int) -> int:
    """The index after the last line of the statement headed by lines[i]."""
    head, end, j, prev = lines[i], i + 1, i + 1, lines[i]
    while j < len(lines):
        line = lines[j]
        if not line.code:  # a comment line belongs to the statement if code of it follows
            j += 1
            continue
        if not _continues(prev, line, head):
            break
        prev, j, end = line, j + 1, j + 1
    return end


def _reflow(lines: list[Line]) -> list[Line]:
    out: list[Line] = []
    i = 0
    while i < len(lines):
        eq = _assign_at(lines[i]) if lines[i].code else None
        if eq is None:
            out.append(lines[i])
            i += 1
            continue
        end = _statement_end(lines, i)
        group = lines[i:end]
        out.extend(_layout(group, eq) if _joinable(group) else _hang(group, eq))
        i = end
    return out


def _joinable(group: list[Line]) -> bool:
    """True when every break is between top-level operands and no comment sits inside."""
    head = group[0]
    for line in group[:-1]:
        if not line.code or line.comment is not None or line.extra["end_depth"] != head.depth:
            return False
    return group[-1].code


def _layout(group: list[Line], eq: int) -> list[Line]:
    head = group[0]
    toks = [t for line in group for t in line.toks]
    head.toks, head.comment, head.comment_col = toks, group[-1].comment, group[-1].comment_col
    width = 2 * head.depth + len(_render(toks))
    cuts = [k for k, t in enumerate(toks) if k > eq + 1 and t.text in "+-" and not t.unary
            and _depth_at(toks, k) == 0]
    if width <= MAX_WIDTH or not cuts:
        head.extra["end_depth"] = group[-1].extra["end_depth"]
        return [head]
    column = 2 * head.depth + len(_render(toks[:eq])) + 1
    pieces = [toks[a:b] for a, b in zip([0] + cuts, cuts + [len(toks)])]
    out = [dataclasses.replace(head, toks=pieces[0], comment=None, extra=dict(head.extra))]
    for piece in pieces[1:]:
        out.append(Line(piece, stack=head.stack, indent=column, extra={"end_depth": head.depth}))
    out[-1].comment, out[-1].comment_col = head.comment, head.comment_col
    for line in out:
        line.extra["multiline"] = True
    return out


def _hang(group: list[Line], eq: int) -> list[Line]:
    """Keep the author's breaks; an operator starting a line at the top level goes under the `=`."""
    head = group[0]
    column = 2 * head.depth + len(_render(head.toks[:eq])) + 1
    hung = None  # a comment line takes the indentation of the code line below it
    for line in reversed(group[1:]):
        if line.code:
            hung = column if line.depth == head.depth and line.toks[0].text in BINARY else None
        line.indent = hung
    if len(group) > 1:
        for line in group:
            line.extra["multiline"] = True
    return group


def _depth_at(toks: list[Tok], k: int) -> int:
    depth = 0
    for tok in toks[:k]:
        depth += tok.text in OPENERS
        depth -= tok.text in CLOSERS
    return depth


# ---- rendering one line -----------------------------------------------------------------------------
def _render(toks: list[Tok]) -> str:
    out, prev = [], None
    for tok in toks:
        if prev is not None and _space_between(prev, tok):
            out.append(" ")
        out.append(tok.text)
        prev = tok
    return "".join(out)


def _space_between(prev: Tok, cur: Tok) -> bool:
    p, c = prev.text, cur.text
    if (c == "." and p[:1].isdigit()) or (p == "." and c[:1].isdigit()):
        return True  # `8 . x` joined would lex as the number `8.` or a unit: a different recipe
    if c in (",", ")", "]", ".") or p in ("(", "[", "."):
        return False
    if c == "}":
        return p != "{"
    if c in ("(", "[") and (p in (")", "]") or (_is_word(p) and p not in NOT_CALLABLE)):
        return False  # a call or an index: f(x), ipo[2]
    return not prev.unary


def _is_word(text: str) -> bool:
    return re.match(r'[\w"]', text) is not None


# ---- alignment --------------------------------------------------------------------------------------
def _align_key(line: Line, one_line_items: set[int], index: int) -> tuple | None:
    if not line.code or line.indent is not None or line.extra.get("multiline"):
        return None
    t = [tok.text for tok in line.toks]
    if line.depth == 0 and line.item and t[0] in DECL_KEYWORDS | {"let", "param"} and len(t) > 3 \
            and t[2] == "=" and index in one_line_items:
        return ("decl", t[0])
    if _assign_at(line) == 1 and line.depth > 0:
        return ("field", line.stack)
    if t[0] == "with" and len(t) > 2 and t[2] == "{" and t[-1] == "}" and _depth_at(line.toks, len(t)) == 0:
        return ("with", line.stack)
    return None


def _align(lines: list[Line]) -> None:
    singles = _one_line_items(lines)
    run: list[Line] = []
    key = None
    for i, line in enumerate(lines + [Line([])]):
        k = _align_key(line, singles, i) if i < len(lines) else None
        if k is not None and k == key and not line.blank_before:
            run.append(line)
            continue
        _align_run(run, key)
        run, key = ([line], k) if k is not None else ([], None)


def _one_line_items(lines: list[Line]) -> set[int]:
    """Indices of top-level item lines whose item ends on that same line."""
    out = set()
    for i, line in enumerate(lines):
        if line.item and line.extra["end_depth"] == 0:
            nxt = next((l for l in lines[i + 1:] if l.code), None)
            if nxt is None or nxt.item:
                out.add(i)
    return out


def _align_run(run: list[Line], key) -> None:
    if len(run) < 2:
        return
    split = {"decl": 2, "field": 1, "with": 2}[key[0]]
    heads = [_render(line.toks[:split]) for line in run]
    width = max(len(h) for h in heads)
    for line, head in zip(run, heads):
        line.text = head.ljust(width) + " " + _render(line.toks[split:])


# ---- vertical spacing and assembly ------------------------------------------------------------------
def _top_level_blanks(lines: list[Line]) -> dict[int, bool]:
    """For each top-level item's first line (its attached comments included): blank line before it?"""
    items = [i for i, line in enumerate(lines) if line.item and line.depth == 0]
    out: dict[int, bool] = {}
    prev_kind, prev_multi = None, False
    for n, i in enumerate(items):
        first = i
        while first > 0 and not lines[first - 1].code and not lines[first].blank_before \
                and lines[first - 1].depth == 0 and (n == 0 or first - 1 > items[n - 1]):
            first -= 1
        end = items[n + 1] if n + 1 < len(items) else len(lines)
        multi = any(line.code for line in lines[i + 1:end])
        kind = lines[i].toks[0].text
        if prev_kind is not None:
            out[first] = lines[first].blank_before or multi or prev_multi or kind != prev_kind
        prev_kind, prev_multi = kind, multi
    return out


def _assemble(lines: list[Line]) -> str:
    top = _top_level_blanks(lines)
    out: list[str] = []
    for i, line in enumerate(lines):
        if out and _blank_before(lines, i, top):
            out.append("")
        out.append(_line_text(line))
    return "\n".join(out).rstrip("\n") + "\n" if out else ""


def _blank_before(lines: list[Line], i: int, top: dict[int, bool]) -> bool:
    if i in top:
        return top[i]
    line, prev = lines[i], lines[i - 1]
    if not line.blank_before:
        return False
    opens = prev.code and prev.toks[-1].text in OPENERS
    closes = line.code and line.toks[0].text in CLOSERS
    return not opens and not closes


def _line_text(line: Line) -> str:
    indent = line.indent if line.indent is not None else 2 * line.depth
    if not line.code:
        return " " * indent + (line.comment or "")
    text = " " * indent + line.text
    if line.comment is not None:
        text += " " * max(line.comment_col - 1 - len(text), 2) + line.comment
    return text


# ---- the meaning check ------------------------------------------------------------------------------
def _verify(before: str, after: str, name: str, parsed: ast.Module) -> None:
    """Formatting moved whitespace only: same tokens, same comments, same tree (spans aside) as `parsed`,
    the tree of `before`."""
    ok = tokens_of(before) == tokens_of(after) and _comments(before) == _comments(after)
    if ok:
        reporter = Reporter()
        ok = shape(parse(SourceFile(name, after), reporter)) == shape(parsed) and not reporter.errors
    if not ok:
        raise AssertionError(f"vpo fmt would change the meaning of {name}: please report this as a bug")


def _comments(text: str) -> list[str]:
    return [c for _, c, _ in _lex(text) if c is not None]


def shape(node):
    """A syntax tree with spans and comments dropped: what a recipe means. Equal shapes, equal meaning."""
    if isinstance(node, tuple):
        return tuple(shape(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, Span):
        return (type(node).__name__,) + tuple(
            shape(getattr(node, f.name)) for f in dataclasses.fields(node)
            if f.name != "comments" and not isinstance(getattr(node, f.name), Span))
    return node
