"""Compiler speed: cold `vpo lint examples/*.vpo` wall time (target <= 0.4 s) and the check time of
generated recipes of 250 to 2,000 stages (target <= 1 s at 1,000, linear).

    python bench/compile_speed.py --out bench/results/compile_speed.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cold_lint(repeats: int) -> list[float]:
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.vpo"))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vpolang.cli", "lint", *examples], cwd=ROOT, capture_output=True,
                       check=True)
        times.append(time.perf_counter() - start)
    return times


def generated(n: int) -> str:
    lines = ["vpo 0.1", "use std.shapes", "", "stage s0 = sft(shapes.tiny_dit) {",
             "  data = shapes.videos(n = 64)", "  steps = 10", "  lr = 1e-4", "}"]
    for i in range(1, n):
        lines += [f"stage s{i} = sft(s{i - 1}) {{", "  data = shapes.videos(n = 64)", f"  steps = {10 + i}",
                  "  lr = 1e-4", "}"]
    return "\n".join(lines) + "\n"


def check_time(n: int) -> float:
    from vpolang.api import check_source
    from vpolang.source import SourceFile

    text = generated(n)
    start = time.perf_counter()
    result = check_source(SourceFile(f"gen{n}.vpo", text))
    took = time.perf_counter() - start
    assert result.ok, result.diagnostics[:3]
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lint = cold_lint(args.repeats)
    check_time(10)  # warm imports and schema construction once
    sizes = {n: check_time(n) for n in (250, 500, 1000, 2000)}
    record = {"benchmark": "compile_speed", "date": datetime.date.today().isoformat(),
              "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "python": platform.python_version(),
              "cold_lint_examples_s": {"median": statistics.median(lint), "all": lint},
              "check_s_by_stages": sizes}
    print(json.dumps(record, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
