"""API callers choose what a mistake does (sqlglot's error-level policy): collect, raise, strict."""
from __future__ import annotations

import pytest

from vpolang.api import check_file, check_source
from vpolang.diagnostics import CompileError
from vpolang.source import SourceFile

GOOD = "vpo 0.1\nuse std.shapes\nstage s = sft(shapes.tiny_dit) { data = shapes.videos(n = 8), steps = 2, lr = 1e-4 }\n"
BAD = GOOD.replace("lr = 1e-4", "lr = -1, stepz = 3")
WARNS = "vpo 0.1\nuse std.shapes\nuse std.models\n" + GOOD.split("\n", 2)[2]  # `models` unused: W0103


def test_collect_returns_every_diagnostic():
    result = check_source(SourceFile("bad.vpo", BAD))
    assert not result.ok and {d.code for d in result.diagnostics} >= {"E0201", "E0203"}


def test_raise_carries_every_error_at_once():
    with pytest.raises(CompileError) as caught:
        check_source(SourceFile("bad.vpo", BAD), error_level="raise")
    assert {d.code for d in caught.value.diagnostics} >= {"E0201", "E0203"}


def test_strict_raises_on_warnings_and_raise_does_not():
    assert check_source(SourceFile("w.vpo", WARNS), error_level="raise").ok
    with pytest.raises(CompileError) as caught:
        check_source(SourceFile("w.vpo", WARNS), error_level="strict")
    assert [d.code for d in caught.value.diagnostics] == ["W0103"]


def test_an_unreadable_file_obeys_the_level(tmp_path):
    (tmp_path / "bin.vpo").write_bytes(b"vpo 0.1\n\xff\n")
    assert check_file(tmp_path / "bin.vpo").diagnostics[0].code == "E0001"
    with pytest.raises(CompileError):
        check_file(tmp_path / "bin.vpo", error_level="raise")
    with pytest.raises(ValueError, match="error level"):
        check_file(tmp_path / "bin.vpo", error_level="loud")
