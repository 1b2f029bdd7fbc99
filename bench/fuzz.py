"""Hostile-recipe fuzzing at scale: 20,000+ generated and mutated recipes (tests/language/fuzzing.py)
through check, lint, plan and fmt in-process. Passes when there are 0 tracebacks, 0 inputs over 1 s (of
CPU time; wall time is recorded too, and a wall-clock alarm stops hangs) and every diagnostic has a
file:line:col.

    nice python bench/fuzz.py --inputs 20000 --out bench/results/fuzz.json

Inputs come in seeded batches (seed = first seed + batch index), so a failure is reproducible from the
name it is reported under (`<seed file>_<seed>_<n>.vpo`) with `inputs(seed, n + 1)`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.language.fuzzing import LIMIT_S, inputs, run_one  # noqa: E402

BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=17_000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    load_start = os.getloadavg()[0]
    counts: Counter = Counter()
    failures, slowest = [], []
    for batch in range(-(-args.inputs // BATCH)):
        size = min(BATCH, args.inputs - batch * BATCH)
        for item in inputs(args.seed + batch, size):
            outcome = run_one(*item)
            counts["inputs"] += 1
            counts["planned"] += outcome.planned
            counts["diagnostics"] += outcome.diagnostics
            counts["diagnostics_without_span"] += len(outcome.spanless)
            counts["tracebacks"] += outcome.crash is not None
            counts["over_1s_cpu"] += outcome.cpu_seconds > LIMIT_S
            counts["over_1s_wall"] += outcome.seconds > LIMIT_S
            counts["not_utf8"] += isinstance(item[1], bytes)
            slowest = sorted(slowest + [(outcome.cpu_seconds, outcome.seconds, outcome.name)], reverse=True)[:5]
            if outcome.failed:
                failures.append({"input": outcome.name, "cpu_s": round(outcome.cpu_seconds, 3),
                                 "wall_s": round(outcome.seconds, 3),
                                 "crash": outcome.crash, "spanless": outcome.spanless[:3]})
        print(f"{counts['inputs']} inputs, {len(failures)} failing, {time.perf_counter() - start_wall:.0f} s",
              file=sys.stderr, flush=True)
    record = {
        "benchmark": "fuzz", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), load average {load_start:.1f} at start",
        "python": platform.python_version(), "command": " ".join(["python", "bench/fuzz.py"] + sys.argv[1:]),
        "seeds": [args.seed, args.seed + -(-args.inputs // BATCH) - 1], "limit_s": LIMIT_S,
        "counts": dict(counts), "wall_s": round(time.perf_counter() - start_wall, 1),
        "cpu_s": round(time.process_time() - start_cpu, 1),
        "slowest_by_cpu": [{"input": name, "cpu_s": round(c, 3), "wall_s": round(w, 3)} for c, w, name in slowest],
        "failures": failures[:50], "passed": not failures,
    }
    print(json.dumps(record, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    sys.exit(0 if not failures else 1)


if __name__ == "__main__":
    main()
