"""`vpo fmt`: canonical layout without touching meaning.

The formatter works on tokens line by line, so it can never change what a recipe says: the token
sequence is kept as is (a test compares it, and the ASTs), comments stay on their lines, and only
whitespace moves. Rules, matching the examples' style:
- two spaces of indentation per open bracket; a line that starts with a closing bracket dedents;
- one space around `=`, binary and comparison operators, after commas, before `{`; none inside
  brackets, before `,` or `)`, or around `.`;
- in a run of consecutive one-line fields of a block (or one-line top-level declarations of the same
  keyword), the `=` signs are aligned; likewise the `{` of consecutive `with NAME {` lines;
- a continuation line that starts with a binary operator is indented under its field's `=`;
- trailing whitespace is removed, blank lines are collapsed to one and dropped after `{` / before `}`,
  the file ends with one newline. A trailing comment keeps its distance from the code (at least one space).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .diagnostics import Reporter
from .parser import _comment_start, parse
from .source import SourceFile

TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[A-Za-z0-9]*|[A-Za-z_]\w*'
                   r'|>=|<=|==|!=|\S')
BINARY = {"+", "-", "*", "/", ">=", "<=", "==", "!=", ">", "<", "and", "or"}
DECL_KEYWORDS = {"model", "dataset", "reward", "cluster", "stage"}


@dataclass
class Line:
    tokens: list[str]
    comment: str | None
    comment_gap: int
    depth: int
    blank: bool = False
    text: str = ""
    eq_at: int | None = None  # index in `text` of the field's `=` (after alignment)
    continues: bool = False  # the value goes on past this line
    extra: dict = field(default_factory=dict)


def format_source(text: str, name: str = "<recipe>") -> str:
    reporter = Reporter()
    parse(SourceFile(name, text), reporter)
    if reporter.errors:
        first = reporter.errors[0]
        raise ValueError(f"{first.span}: {first.message}; fix syntax errors before formatting")
    lines = _split(text)
    for line in lines:
        line.text = _render(line.tokens)
    _align(lines)
    return _assemble(lines)


def tokens_of(text: str) -> list[str]:
    """The token sequence of a recipe (comments and whitespace dropped): what formatting preserves."""
    out = []
    for raw in text.split("\n"):
        cut = _comment_start(raw)
        out.extend(TOKEN.findall(raw if cut is None else raw[:cut]))
    return out


def _split(text: str) -> list[Line]:
    lines, depth = [], 0
    for raw in text.replace("\r\n", "\n").split("\n"):
        cut = _comment_start(raw)
        code, comment = (raw, None) if cut is None else (raw[:cut], raw[cut:].rstrip())
        toks = TOKEN.findall(code)
        gap = len(code) - len(code.rstrip()) if comment is not None and toks else 0
        start_depth = depth - (1 if toks and toks[0] in ")]}" else 0)
        lines.append(Line(toks, comment, max(gap, 1), max(start_depth, 0), blank=not toks and comment is None))
        for t in toks:
            depth += t in "([{"
            depth -= t in ")]}"
        lines[-1].continues = depth > lines[-1].depth + (1 if toks and toks[-1] == "{" else 0) or \
            (bool(toks) and toks[-1] in BINARY)
    return lines


def _render(toks: list[str]) -> str:
    out = ""
    prev = None
    for i, t in enumerate(toks):
        if prev is not None and _space_between(prev, t, toks[i - 2] if i >= 2 else None):
            out += " "
        out += t
        prev = t
    return out


def _space_between(prev: str, cur: str, before_prev: str | None) -> bool:
    if cur in ",)]" or prev in "([" or cur == "." or prev == ".":
        return False
    if cur in "([" and _is_word(prev) and prev not in BINARY and prev not in ("=", ","):
        return False  # calls and indexing: f(x), ipo[2]
    if prev == "-" and (before_prev is None or before_prev in BINARY or before_prev in "=([,{"):
        return False  # unary minus
    return True


def _is_word(tok: str) -> bool:
    return bool(re.match(r"[\w\"]", tok)) or tok in ")]"


def _is_field(line: Line) -> bool:
    t = line.tokens
    # inside a block `reward = ...` is a field; at top level the keywords start declarations
    return len(t) >= 3 and re.match(r"[A-Za-z_]", t[0]) is not None and t[1] == "=" and \
        (line.depth > 0 or t[0] not in DECL_KEYWORDS)


def _is_decl(line: Line) -> bool:
    t = line.tokens
    return len(t) >= 4 and t[0] in DECL_KEYWORDS | {"let", "param"} and t[2] == "="


def _align(lines: list[Line]) -> None:
    run: list[Line] = []
    key = None
    for line in lines + [Line([], None, 1, -1, blank=True)]:
        shape = _shape(line)
        if shape is not None and shape == key and not run[-1].continues:
            run.append(line)
            continue
        _align_run(run, key)
        run, key = ([line], shape) if shape is not None else ([], None)
    for i, line in enumerate(lines):  # continuation lines starting with an operator go under the `=`
        if line.tokens and line.tokens[0] in BINARY and i:
            owner = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].eq_at is not None), None)
            if owner is not None and owner.depth == line.depth:
                line.extra["column"] = owner.depth * 2 + owner.eq_at


def _shape(line: Line):
    if _is_field(line):
        return ("field", line.depth)
    if _is_decl(line) and line.depth == 0:
        return ("decl", line.tokens[0])
    if len(line.tokens) >= 3 and line.tokens[0] == "with" and line.tokens[2] == "{":
        return ("with", line.depth)
    return None


def _align_run(run: list[Line], key) -> None:
    if not run:
        return
    if key[0] == "with":
        width = max(len(f"with {l.tokens[1]}") for l in run)
        for l in run:
            head = f"with {l.tokens[1]}"
            l.text = head.ljust(width) + " " + l.text[len(head) + 1:]
        return
    head_len = 1 if key[0] == "field" else 2  # `name` or `keyword name`
    width = max(len(" ".join(l.tokens[:head_len])) for l in run) if len(run) > 1 else None
    for l in run:
        head = " ".join(l.tokens[:head_len])
        rest = l.text[len(head):].lstrip()
        l.text = (head.ljust(width) if width else head) + " " + rest
        l.eq_at = l.text.index("=")


def _assemble(lines: list[Line]) -> str:
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.blank:
            nxt = next((l for l in lines[i + 1:] if not l.blank), None)
            if not out or out[-1] == "" or out[-1].rstrip().endswith("{") or nxt is None or \
                    (nxt.tokens and nxt.tokens[0] == "}"):
                continue
            out.append("")
            continue
        indent = " " * line.extra.get("column", line.depth * 2)
        if not line.tokens:
            out.append(indent + line.comment)
            continue
        text = indent + line.text
        if line.comment is not None:
            text += " " * line.comment_gap + line.comment
        out.append(text.rstrip())
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
