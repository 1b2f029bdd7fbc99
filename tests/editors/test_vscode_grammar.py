"""The VS Code TextMate grammar: valid, complete against the language, and agreeing with vpo's own
lexer on every token of the example recipes (comments, strings, numbers with and without units,
keywords)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vpolang.parser import DECL_KINDS, _lark
from vpolang.schema.stages import ALL_MODIFIERS, STAGES

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((VSCODE / "syntaxes" / "vpo.tmLanguage.json").read_text())
EXAMPLES = sorted((ROOT / "examples").glob("*.vpo")) + sorted((ROOT / "stdlib").glob("*.vpo"))


def rules() -> list[dict]:
    """Top-level rules in order, includes expanded, nested `patterns` flattened."""
    out = []

    def add(rule: dict) -> None:
        if "include" in rule:
            add(GRAMMAR["repository"][rule["include"][1:]])
        elif "patterns" in rule and "begin" not in rule:
            for inner in rule["patterns"]:
                add(inner)
        else:
            out.append(rule)

    for rule in GRAMMAR["patterns"]:
        add(rule)
    return out


def scope_of(rule: dict, m: re.Match) -> list[tuple[int, int, str]]:
    """(start, end, scope) spans a match paints: captures, or the whole match."""
    if "captures" in rule:
        return [(m.start(int(k)), m.end(int(k)), v["name"]) for k, v in rule["captures"].items()
                if m.group(int(k)) is not None]
    return [(m.start(), m.end(), rule["name"])]


def tokenize(line: str) -> list[tuple[int, int, str]]:
    """A TextMate-style scan of one line: at each position the earliest match wins, ties by rule order;
    a begin/end rule (strings) runs to its end pattern."""
    spans, pos, compiled = [], 0, [(r, re.compile(r.get("match") or r["begin"])) for r in rules()]
    while pos < len(line):
        best = None
        for rule, pattern in compiled:
            m = pattern.search(line, pos)
            if m and m.end() > m.start() and (best is None or m.start() < best[1].start()):
                best = (rule, m)
        if best is None:
            break
        rule, m = best
        if "begin" in rule:
            end = re.compile(rule["end"]).search(line, m.end())
            stop = end.end() if end else len(line)
            spans.append((m.start(), stop, rule["name"]))
            pos = stop
        else:
            spans.extend(scope_of(rule, m))
            pos = m.end()
    return spans


def scope_at(spans, start: int, end: int) -> str | None:
    for a, b, scope in spans:
        if a <= start and end <= b:
            return scope
    return None


def test_files_are_valid_and_wired_together():
    package = json.loads((VSCODE / "package.json").read_text())
    [language] = package["contributes"]["languages"]
    [grammar] = package["contributes"]["grammars"]
    assert language["extensions"] == [".vpo"] and grammar["scopeName"] == GRAMMAR["scopeName"]
    assert (VSCODE / grammar["path"]).resolve() == (VSCODE / "syntaxes" / "vpo.tmLanguage.json").resolve()
    config = json.loads((VSCODE / language["configuration"]).read_text())
    assert config["comments"]["lineComment"] == "#"
    for rule in rules():
        for key in ("match", "begin", "end"):
            if key in rule:
                re.compile(rule[key])


def test_every_keyword_kind_and_modifier_is_highlighted():
    text = json.dumps(GRAMMAR)
    lark_grammar = (ROOT / "vpolang" / "grammar" / "vpo.lark").read_text()
    keywords = set(re.findall(r'"([a-z_][a-z0-9_]*)"', lark_grammar)) | {"sha256"}
    words = [*keywords, *DECL_KINDS, *STAGES, *ALL_MODIFIERS]
    missing = [w for w in words if not re.search(rf"[|(\\b]{w}[|)\\]", text)]
    assert not missing, f"not in the TextMate grammar: {missing}"


KEYWORDS = {"VPO", "USE", "AS", "LET", "PARAM", "ITERATE", "ROUNDS", "NEXT", "WITH", "ON", "AND", "OR", "NOT"}
EXPECTED = {"STRING": "string.quoted.double.vpo", "QUANTITY": "constant.numeric.quantity.vpo"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_tokens_agree_with_the_vpo_lexer(path):
    text = path.read_text()
    lines = text.splitlines()
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    spans = [tokenize(line) for line in lines]
    checked = 0
    for token in _lark().lex(text):
        row, col = token.line - 1, token.column - 1
        got = scope_at(spans[row], col, col + len(token.value))
        if token.type in EXPECTED:
            assert got == EXPECTED[token.type], (path.name, token.line, token.value, got)
        elif token.type == "NUMBER":
            assert got in ("constant.numeric.vpo", "constant.numeric.version.vpo"), (path.name, token.line, got)
        elif token.type in KEYWORDS:
            assert got is not None and got.startswith(("keyword", "storage")), (path.name, token.line, token, got)
        elif token.type in ("TRUE", "FALSE"):
            assert got == "constant.language.boolean.vpo", (path.name, token.line, got)
        else:
            continue
        checked += 1
    comments = 0
    for row, line in enumerate(lines):
        outside_strings = re.sub(r'"([^"\\]|\\.)*"', lambda m: " " * len(m.group()), line)
        if "#" in outside_strings:
            start = outside_strings.index("#")
            assert scope_at(spans[row], start, len(line)) == "comment.line.number-sign.vpo", (path.name, row + 1)
            comments += 1
    assert checked + comments > 0
