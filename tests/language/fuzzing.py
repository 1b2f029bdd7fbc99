"""Hostile-recipe fuzzing shared by tests/language/test_fuzz.py (seeded, about a minute) and bench/fuzz.py
(20,000+ inputs): generated recipes and mutations of examples/ and spec/cases/ go through check, lint,
plan and fmt in-process, and the only acceptable outcomes are a result or diagnostics with a span.

An input fails when any step raises (other than FormatError, fmt's refusal of text with syntax errors),
when a diagnostic has no file:line:col, or when the whole pipeline takes more than LIMIT_S of CPU time
(the machine is shared by several engineers: wall time measures their load as much as ours; a run that
waits instead of computing is caught by the wall-clock alarm at HANG_S)."""
from __future__ import annotations

import random
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from vpolang.api import check_source, read_source
from vpolang.format import TOKEN, FormatError, format_source
from vpolang.lint import lint
from vpolang.lower import lower
from vpolang.planning import attach_estimates
from vpolang.schema.stages import STAGES
from vpolang.source import SourceFile

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 1.0
HANG_S = 10  # an input still running after this is stopped (and counted as over the limit)


def seed_files() -> list[Path]:
    cases = [p for p in sorted((ROOT / "spec" / "cases").rglob("*.vpo")) if p.stat().st_size < 8_000]
    return sorted((ROOT / "examples").glob("*.vpo")) + cases


# ---- inputs -------------------------------------------------------------------------------------------
HUGE = ["9" * 5000, "1" * 65, "1e400", "1e308", "1.79e308", "-1.79e308", "1e9", "1e15", "1e16", "4294967297",
        "1e-400", "0", "-1", "1e308h", "1e400GiB", "1e308TB", "1e9p", "1e12B", "999999999999999999999k", ".5e"]
UNICODE = ["\u00e9", "\u0663", "\u200b", "\ufeff", "\U0001F3AC", "\u202e", "\uff56", "\r", "\t", "\x0b", "\x0c",
           "\u2028", "\x00", "\\", "\\u00", '\\"', "\U00010000"]
PIECES = ["{", "}", "(", ")", "[", "]", "=", ",", ".", "+", "*", "/", "-", ">=", "==", "not", "and", "or",
          "stage", "with", "iterate", "rounds", "next", "on", "use", "let", "param", "model", "dataset", "reward",
          "cluster", '"x"', '""', "1e-4", "48h", "480p", "3zz", "#", "\n", "sft", "grpo", "dpo", "kto", "rwr",
          "evaluate", "reward_model", "true", "false", "shapes", "std", "vpo", "0.1", "sha256", "as"]
STRING_INJECTIONS = ["\n", "\\n#SBATCH --x", '\\"', "\\", "\n  stage s = sft(x) {", "\r\n", "../../etc/passwd",
                     "$(id)", "`id`", "%", "\u0000", "\\u0041"]


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def mutate(text: str, rng: random.Random) -> str | bytes:
    """One to four mutations of a recipe's text; byte flips give bytes (maybe not UTF-8)."""
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("flip", "delete", "duplicate", "swap", "insert", "truncate", "huge", "nest", "unicode",
                         "string", "line"))
        if op == "flip":
            data = bytearray(text.encode("utf-8", "surrogateescape"))
            for _ in range(rng.randint(1, 3)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return bytes(data)
        elif op in ("delete", "duplicate", "swap", "insert", "truncate"):
            text = _token_edit(text, op, rng)
        elif op == "huge":
            text = _replace_number(text, rng.choice(HUGE), rng)
        elif op == "nest":
            depth = rng.choice((10, 63, 64, 65, 100, 500))
            opener, closer = rng.choice((("(", ")"), ("[", "]"), ("{", "}")))
            text = _replace_number(text, opener * depth + "1" + closer * rng.choice((depth, depth - 1)), rng)
        elif op == "unicode":
            i = rng.randrange(len(text) + 1)
            text = text[:i] + rng.choice(UNICODE) + text[i:]
        elif op == "string":
            text = _inject_into_string(text, rng)
        else:
            text = _insert_line(text, rng)
    return text


def _token_edit(text: str, op: str, rng: random.Random) -> str:
    toks = _tokens(text)
    if not toks:
        return text
    i = rng.randrange(len(toks))
    if op == "delete":
        del toks[i]
    elif op == "duplicate":
        toks[i:i] = [toks[i]] * rng.choice((1, 1, 2, 50))
    elif op == "swap":
        j = rng.randrange(len(toks))
        toks[i], toks[j] = toks[j], toks[i]
    elif op == "insert":
        toks.insert(i, rng.choice(PIECES))
    else:
        toks = toks[:i]
    # rejoin with the layout of the original where it can: one space, with newlines before keywords
    return " ".join(t if t not in ("stage", "let", "use", "model", "dataset", "reward", "cluster", "param",
                                   "iterate") else "\n" + t for t in toks)


def _replace_number(text: str, new: str, rng: random.Random) -> str:
    spots = [m for m in TOKEN.finditer(text) if m.group()[0].isdigit()]
    if not spots:
        return text + "\nlet fuzz = " + new + "\n"
    m = rng.choice(spots)
    return text[:m.start()] + new + text[m.end():]


def _inject_into_string(text: str, rng: random.Random) -> str:
    spots = [m for m in TOKEN.finditer(text) if m.group().startswith('"') and len(m.group()) >= 2]
    if not spots:
        return text + '\nlet s = "a' + rng.choice(STRING_INJECTIONS) + 'b"\n'
    m = rng.choice(spots)
    cut = rng.randint(m.start() + 1, m.end() - 1)
    return text[:cut] + rng.choice(STRING_INJECTIONS) + text[cut:]


def _insert_line(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    extra = rng.choice((
        "let x = " + " + ".join(["1"] * rng.choice((10, 199, 200, 201, 495, 1000))),
        "let x = " + " * ".join(["10000000000000000000000000000000"] * rng.choice((2, 3))),
        "".join(f"let r{k} = r{k + 1}\n" for k in range(rng.choice((10, 100, 200)))) + "let r200 = 1\nlet r100 = 1\n"
        "let r10 = 1",
        'use "../../../../etc/passwd" as leak',
        'use "helpers/common.vpo" as c sha256 "' + "0" * 64 + '"',
        'use "/etc/hostname" as h sha256 "' + "a" * 64 + '"',
        "let a = b\nlet b = a",
        "param p = 1",
        'cluster c = slurm { partition = "gpu\\n#" gpu = "A100-80GB" time_limit = 1e400h }',
        "vpo 0.1", "vpo \u0663", "vpo\u0663",
        'let s = "' + "x" * rng.choice((100, 65_537)) + '"',
        "stage g = grpo(shapes.tiny_dit) { prompts = shapes.prompts(n = 8) group_size = 1e9 batch = 1e9 "
        "steps = 1 lr = 1e-5 reward = shapes.alignment }",
        "stage d = dpo(shapes.tiny_dit) { pairs = online(shapes.prompts(n = 4), n = 1.79e308, judges = "
        "[shapes.alignment]) steps = 2 lr = 1e-5 }",
    ))
    i = rng.randrange(len(lines) + 1)
    return "\n".join(lines[:i] + [extra] + lines[i:])


def generate(rng: random.Random) -> str:
    """A recipe built from the stage schemas: random fields with random (often wrong) values."""
    out = ["vpo 0.1", "use std.shapes", "model base = shapes.tiny_dit"]
    prev = "base"
    values = ["1", "0", "-3", "1e-4", "1e9", "1e400", "1.79e308", "48h", "80GiB", "480p", "2k", '"x"', "true",
              "base", "shapes.alignment", "shapes.videos(n = 16)", "shapes.prompts(n = 8)", "[1, 2]", "[]",
              "shapes.alignment + 0.5 * shapes.smoothness", "synthetic(shapes.videos(n = 8))", "best_worst",
              "9" * 70, "(" * 30 + "1" + ")" * 30, "nope", "prev"]
    for n in range(rng.randint(1, 12)):
        kind = rng.choice(sorted(STAGES))
        fields = sorted(STAGES[kind].model_fields)
        lines = [f"stage s{n} = {kind}({prev}) {{"]
        for name in rng.sample(fields, min(len(fields), rng.randint(0, 6))):
            value = rng.choice(values).replace("prev", prev)
            lines.append(f"  {name} = {value}")
        lines.append("}")
        out += lines
        prev = f"s{n}" if rng.random() < 0.7 else prev
    return "\n".join(out) + "\n"


def inputs(seed: int, count: int):
    """`count` inputs, deterministic in `seed`: (name, text or bytes, directory the recipe sits in)."""
    rng = random.Random(seed)
    seeds = [(p, p.read_text(encoding="utf-8", errors="surrogateescape")) for p in seed_files()]
    for n in range(count):
        roll = rng.random()
        if roll < 0.2:
            yield f"gen{seed}_{n}.vpo", generate(rng), ROOT / "examples"
            continue
        path, text = rng.choice(seeds)
        if roll < 0.35:  # one plausible number changed: the recipe usually still checks, and gets planned
            text = _replace_number(text, rng.choice(("1", "2", "3", "7", "12", "64", "100", "1000", "65536",
                                                     "999983", "1e6", "0.5", "1e-8")), rng)
        else:
            text = mutate(text, rng)
        yield f"{path.stem}_{seed}_{n}.vpo", text, path.parent


# ---- running one input ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    name: str
    seconds: float = 0.0  # wall
    cpu_seconds: float = 0.0
    diagnostics: int = 0
    crash: str | None = None  # "ExceptionType: message" when a step raised
    spanless: list[str] = field(default_factory=list)  # diagnostics without file:line:col
    planned: bool = False

    @property
    def failed(self) -> bool:
        return self.crash is not None or bool(self.spanless) or self.cpu_seconds > LIMIT_S


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def run_one(name: str, data: str | bytes, directory: Path) -> Outcome:
    outcome = Outcome(name)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        diags = _pipeline(name, data, directory, outcome)
        outcome.diagnostics = len(diags)
        outcome.spanless = [f"{d.code} {d.message[:80]}" for d in diags if not _has_span(d)]
    except _Hang:
        outcome.crash = f"hang: still running after {HANG_S} s"
    except Exception as exc:  # noqa: BLE001 - any exception is the bug this looks for
        outcome.crash = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        outcome.seconds = time.perf_counter() - start
        outcome.cpu_seconds = time.process_time() - cpu
    return outcome


def _pipeline(name: str, data: str | bytes, directory: Path, outcome: Outcome) -> list:
    if isinstance(data, bytes):  # not UTF-8: through the file reader, as `vpo check` would read it
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            source, diag = read_source(path, display=name)
        if source is None:
            return [diag]
        data = source.text
    source = SourceFile(name, data, directory / name)
    result = check_source(source)
    diags = list(result.diagnostics)
    if result.ok:
        diags += lint(result)
        plan = lower(result.recipe)
        diags += attach_estimates(plan, directory)
        plan.to_json()
        outcome.planned = True
    try:
        format_source(data, name)
    except FormatError as exc:
        diags += exc.diagnostics
    return diags


def _has_span(d) -> bool:
    s = d.span
    return s is not None and bool(s.file) and s.line >= 1 and s.col >= 1
