"""Mutation fuzzing: thousands of broken inputs through parse, check, lint, lower, plan and format must
only ever produce diagnostics with a span, never an exception or a hang (about a minute on two cores)."""
from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest

from vpolang.api import check_source
from vpolang.format import TOKEN, format_source
from vpolang.lower import lower
from vpolang.source import SourceFile

from .fuzzing import inputs as fuzz_inputs, run_one

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [p.read_text() for p in sorted((ROOT / "examples").glob("*.vpo"))]
PIECES = ["{", "}", "(", ")", "[", "]", "=", ",", ".", "+", "*", ">=", "stage", "with", "iterate", "rounds", "next",
          "on", "use", '"x"', "1e-4", "48h", "480p", "3zz", "\x00", "\u00e9", "#", "\n", "-", "not", "sft", "grpo"]


def mutate(text: str, rng: random.Random) -> str:
    toks = TOKEN.findall(text) if rng.random() < 0.5 else list(text)
    for _ in range(rng.randint(1, 6)):
        op = rng.choice(("delete", "duplicate", "swap", "insert", "truncate"))
        if not toks:
            break
        i = rng.randrange(len(toks))
        if op == "delete":
            del toks[i]
        elif op == "duplicate":
            toks.insert(i, toks[i])
        elif op == "swap":
            j = rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
        elif op == "insert":
            toks.insert(i, rng.choice(PIECES))
        else:
            toks = toks[:i]
    sep = " " if len(toks) and len(toks[0]) > 1 else ""
    return sep.join(toks) if sep else "".join(toks)


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


@pytest.mark.parametrize("seed", range(4))
def test_mutations_never_crash(seed):
    rng = random.Random(seed)
    signal.signal(signal.SIGALRM, _alarm)
    for n in range(250):
        text = mutate(rng.choice(SEEDS), rng)
        signal.alarm(5)
        try:
            result = check_source(SourceFile(f"fuzz{n}.vpo", text))
            if result.ok:
                lower(result.recipe)
            try:
                format_source(text)
            except ValueError:
                pass  # a file with syntax errors is refused, by design
        except Timeout:
            pytest.fail(f"hang on input:\n{text}")
        except Exception as exc:  # noqa: BLE001 - any exception is the bug this test looks for
            pytest.fail(f"{type(exc).__name__}: {exc} on input:\n{text}")
        finally:
            signal.alarm(0)


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
