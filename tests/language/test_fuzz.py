"""Mutation fuzzing: thousands of broken inputs through parse, check, lint, lower, plan and format must
only ever produce diagnostics with a span, never an exception or a hang (about a minute on two cores).
The generator and the mutations live in fuzzing.py, shared with bench/fuzz.py."""
from __future__ import annotations

import pytest

from vpolang.api import check_source
from vpolang.source import SourceFile

from .fuzzing import inputs as fuzz_inputs, run_one


@pytest.mark.parametrize("seed", range(3))
def test_hostile_inputs_give_diagnostics_with_spans_in_under_a_second(seed):
    """Generated recipes and mutations of examples/ and spec/cases/ (byte flips, token edits, huge numbers,
    deep nesting, unicode, injections into strings, hostile lines) through check, lint, plan and fmt:
    only diagnostics, each with file:line:col, each input under a second. bench/fuzz.py runs 20,000+."""
    failures = [o for o in (run_one(*item) for item in fuzz_inputs(1000 + seed, 700)) if o.failed]
    assert not failures, "\n".join(f"{o.name}: {o.seconds:.2f} s {o.crash or ''} {o.spanless[:2]}"
                                     for o in failures[:10])


def test_pathological_inputs():
    for text in ("", "\n" * 10000, "vpo 0.1\n" + "let x = " + "(" * 500 + "1" + ")" * 500,
                 "vpo 0.1\n" + "let x = 1 +" * 3000 + " 1\n", "\ufeffvpo 0.1\n", "vpo 0.1\n" + "garbage line\n" * 2000):
        result = check_source(SourceFile("p.vpo", text))
        assert result.diagnostics or result.ok
