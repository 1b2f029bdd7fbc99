"""Compiler speed: cold `vpo lint examples/*.vpo` wall time (target <= 0.4 s) and the check time of
generated recipes of 250 to 2,000 stages (target <= 1 s at 1,000, linear).

    python bench/compile_speed.py --out bench/results/compile_speed.json
    python bench/compile_speed.py --sizes 1000 4000 16000 --no-lint --out bench/results/compile_linear.json

Check times are wall and CPU (process) seconds: on a shared machine the CPU time is the one that says
whether the work is linear; per_stage_ms divides it by the number of stages.
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
    return check_times(n)["wall_s"]


def check_times(n: int) -> dict:
    from vpolang.api import check_source
    from vpolang.source import SourceFile

    text = generated(n)
    start, cpu = time.perf_counter(), time.process_time()
    result = check_source(SourceFile(f"gen{n}.vpo", text))
    took, took_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert result.ok, result.diagnostics[:3]
    return {"wall_s": took, "cpu_s": took_cpu, "per_stage_ms": 1000 * took_cpu / n, "bytes": len(text)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="stages: record wall and CPU times")
    parser.add_argument("--no-lint", action="store_true", help="skip the cold lint timing")
    args = parser.parse_args()
    record = {"benchmark": "compile_speed", "date": datetime.date.today().isoformat(),
              "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "python": platform.python_version(),
              "load_average_1m_at_start": __import__("os").getloadavg()[0]}
    if not args.no_lint:
        lint = cold_lint(args.repeats)
        record["cold_lint_examples_s"] = {"median": statistics.median(lint), "all": lint}
    check_time(10)  # warm imports and schema construction once
    if args.sizes:
        record["check_by_stages"] = {n: check_times(n) for n in args.sizes}
    else:
        record["check_s_by_stages"] = {n: check_time(n) for n in (250, 500, 1000, 2000)}
    print(json.dumps(record, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
