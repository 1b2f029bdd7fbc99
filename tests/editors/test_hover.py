"""Hover text in the editor: `vpo explain --format markdown`, the name resolution of editors/vscode/hover.js
(run under node) on every field of the example recipes, and extension.js end to end against a stand-in
for the VS Code API that records the hover it returns."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.conftest import vpo
from vpolang.hover import explain_markdown

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
EXAMPLES = sorted((ROOT / "examples").glob("*.vpo"))
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed (the extension's logic runs under node)")

CANDIDATES = """
const h = require(process.argv[1]);
const queries = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(queries.map(([text, offset]) => h.explainCandidates(text, offset))));
"""


def candidates(queries: list[tuple[str, int]]) -> list[list[str]]:
    out = subprocess.run([NODE, "-e", CANDIDATES, str(VSCODE / "hover.js")], input=json.dumps(queries),
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def shown(names: list[str]) -> str | None:
    """What the extension shows: the first name vpo explains."""
    return next((n for n in names if not explain_markdown(n).startswith("unknown")), None)


def test_markdown_explain_from_the_command_line():
    out = vpo("explain", "grpo.kl", "--format", "markdown")
    assert out.stdout.startswith("**grpo.kl**: `float` = `0.0`") and "beta\\_kl" in out.stdout
    stage = vpo("explain", "grpo", "--format", "markdown").stdout
    assert "`with vipo`" in stage and re.search(r"^- `group_size`: `int` = `\d+`", stage, re.M)
    assert vpo("explain", "std.shapes.tiny_dit", "--format", "markdown").stdout.startswith(
        "**std.shapes.tiny_dit**\n\n```vpo\nmodel tiny_dit")
    assert vpo("explain", "E0201", "--format", "markdown").stdout.startswith("**E0201** (error)")
    unknown = vpo("explain", "grpo.klx", "--format", "markdown", check=False)
    assert unknown.returncode == 1 and "did you mean `grpo.kl`" in unknown.stdout
    bad = vpo("explain", "grpo", "--format", "html", check=False)
    assert bad.returncode == 1 and "--format must be text or markdown" in bad.stderr


def test_markdown_matches_the_plain_entry():
    """Same fields, defaults and descriptions as `vpo explain`: only the markup differs."""
    from vpolang.explain import _all_schemas, field_rows

    for name, schema in _all_schemas().items():
        text = explain_markdown(name)
        for fname, ftype, default, _, _ in field_rows(schema):
            assert f"- `{fname}`: `{ftype}` = `{default}`" in text, (name, fname)


@needs_node
def test_every_field_of_the_examples_hovers_with_its_own_entry():
    """Each `field = value` in a stage, modifier, cluster or constructor call resolves to `owner.field`;
    names bound by `iterate x(policy = ...)` and `next policy = ...` are the recipe's own, with no entry."""
    queries, where = [], []
    for path in EXAMPLES:
        text = path.read_text()
        for m in re.finditer(r"(?<![\w.])([a-z_]\w*)\s*=(?!=)", text):
            head = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
            if "#" in head or head.count('"') % 2 or re.match(r"\s*(stage|model|dataset|reward|cluster|let|param)"
                                                                r"\s+$", head):
                continue
            queries.append((text, m.start() + 1))
            where.append((path.name, text.count("\n", 0, m.start()) + 1, m.group(1), head))
    assert len(queries) > 100
    for (name, line, word, head), names in zip(where, candidates(queries)):
        if re.match(r"\s*(next\s+|iterate\s+\w+\($)", head):
            assert shown(names) is None, (name, line, names)
        else:
            got = shown(names)
            assert got is not None and got.endswith("." + word) and got != word, (name, line, names, got)


@needs_node
def test_words_that_are_not_fields():
    text = (ROOT / "examples" / "teleboost.vpo").read_text()

    def at(needle: str, skip: int = 0) -> int:
        return text.index(needle) + skip + 1

    cases = {at("grpo(sft)"): "grpo", at("with vipo", 5): "vipo", at("models.wan21"): "std.models.wan21_t2v_1_3b",
             at("r.safety"): "std.rewards.safety", at("freeze(p"): "freeze", at("# Stage I"): None,
             at('"gpu"'): None, at("2000 * scale", 9): None}
    got = candidates([(text, offset) for offset in cases])
    for (offset, expected), names in zip(cases.items(), got):
        assert shown(names) == expected, (text[offset - 1:offset + 20], names)


STUB = """
exports.Hover = class { constructor(contents) { this.contents = contents; } };
exports.MarkdownString = class { constructor(value) { this.value = value; } };
exports.workspace = { getConfiguration: () => ({ get: (key, fallback) => process.env.VPO_EXE || fallback }) };
let provider = null;
exports.languages = { registerHoverProvider: (language, p) => { exports.language = language; provider = p; return {}; } };
exports.hover = (text, offset) => provider.provideHover(
  { getText: () => text, offsetAt: () => offset }, null, { isCancellationRequested: false });
"""
HOVER = """
const vscode = require("vscode");
require(process.argv[1]).activate({ subscriptions: [] });
const [text, offset] = JSON.parse(require("fs").readFileSync(0, "utf8"));
vscode.hover(text, offset).then((h) => console.log(JSON.stringify({ language: vscode.language,
  value: h ? h.contents.value : null })));
"""


@needs_node
def test_extension_shows_the_markdown_entry(tmp_path):
    (tmp_path / "node_modules" / "vscode").mkdir(parents=True)
    (tmp_path / "node_modules" / "vscode" / "index.js").write_text(STUB)
    exe = tmp_path / "vpo"
    exe.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m vpolang.cli \"$@\"\n")
    exe.chmod(0o755)
    text = (ROOT / "examples" / "teleboost.vpo").read_text()

    def hover(offset: int) -> dict:
        out = subprocess.run([NODE, "-e", HOVER, str(VSCODE / "extension.js")], input=json.dumps([text, offset]),
                             capture_output=True, text=True, timeout=60, check=True,
                             env={"NODE_PATH": str(tmp_path / "node_modules"), "VPO_EXE": str(exe), "PATH": "/usr/bin:/bin"})
        return json.loads(out.stdout)

    got = hover(text.index("group_size") + 2)
    assert got["language"] == "vpo" and got["value"] == explain_markdown("grpo.group_size") + "\n"
    assert hover(text.index("# Stage I") + 3)["value"] is None
