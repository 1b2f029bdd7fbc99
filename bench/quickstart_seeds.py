"""How often each stage of the quickstart helps, over seeds (issue 18).

Runs `examples/quickstart.vpo` through `vpo run` once per seed, with `seed = S` added to every stage (the
data, rollouts, pairs and evaluation noise all change with it), and reads each stage's verdict the way
`vpo report` does (vpolang/report/verdict.py: the stage minus the policy it started from, paired on the
same held-out prompts and noise). Writes a JSON file with every number and prints a Markdown table: per
stage and metric, the mean paired gain over seeds with a 95% t-interval over seeds, and how many seeds
were "better" (p < 0.01) / "no change" / "worse". A seed that does not finish is left out and said so.

    nice python bench/quickstart_seeds.py --seeds 0 1 2 3 4 --out bench/results/quickstart_seeds.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from versions import versions  # noqa: E402

from vpolang.report.collect import collect_run  # noqa: E402
from vpolang.report.verdict import stage_verdicts  # noqa: E402

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def seeded(recipe: str, seed: int) -> str:
    """The recipe with `seed = S` as the first field of every stage."""
    return re.sub(r"^(stage [^\n]*\{)\n", lambda m: f"{m.group(1)}\n  seed = {seed}\n", recipe, flags=re.M)


def run_seed(recipe: Path, seed: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"quickstart_seed{seed}.vpo"
    path.write_text(seeded(recipe.read_text(), seed))
    run_dir = work / f"run{seed}"
    started = time.time()
    cmd = [sys.executable, "-m", "vpolang.cli", "run", str(path), "--run-dir", str(run_dir), "--progress", "plain"]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    wall = time.time() - started
    if proc.returncode != 0:
        return {"seed": seed, "ok": False, "wall_s": wall, "stderr": proc.stderr[-2000:]}
    run = collect_run(run_dir)
    evaluation = next(r.evaluation for r in run.jobs if r.evaluation)
    stages = {}
    for v in stage_verdicts(run, evaluation):
        stages[v.stage] = {"kind": v.kind, "start": v.start, "verdict": v.verdict, "alarms": v.alarms,
                           "metrics": {r.metric: {"before": r.before, "after": r.after, "target": r.target,
                                                  "verdict": r.verdict, **r.diff} for r in v.rows}}
    return {"seed": seed, "ok": True, "wall_s": wall, "stages": stages}


def summary(results: list[dict]) -> list[dict]:
    done = [r for r in results if r["ok"]]
    rows = []
    if not done:
        return rows
    for stage, first in done[0]["stages"].items():
        for metric, cell in first["metrics"].items():
            gains = [r["stages"][stage]["metrics"][metric]["mean"] for r in done if stage in r["stages"]]
            verdicts = [r["stages"][stage]["metrics"][metric]["verdict"] for r in done if stage in r["stages"]]
            mean = statistics.fmean(gains)
            half = T975.get(len(gains) - 1, 1.96) * statistics.stdev(gains) / len(gains) ** 0.5 if len(gains) > 1 else float("nan")
            rows.append({"stage": stage, "start": first["start"], "metric": metric, "target": cell["target"],
                         "mean_gain": mean, "ci95": [mean - half, mean + half], "seeds": len(gains),
                         "better": verdicts.count("better"), "no_change": verdicts.count("no change"),
                         "worse": verdicts.count("worse")})
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| stage | metric | mean paired gain over seeds [95% t-interval] | better / no change / worse (p < 0.01) |",
           "| --- | --- | --- | --- |"]
    for r in rows:
        name = f"{r['metric']} (target)" if r["target"] else r["metric"]
        out.append(f"| {r['stage']} vs {r['start']} | {name} | {r['mean_gain']:+.4f} [{r['ci95'][0]:+.4f}, "
                   f"{r['ci95'][1]:+.4f}] | {r['better']} / {r['no_change']} / {r['worse']} of {r['seeds']} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", type=Path, default=ROOT / "examples" / "quickstart.vpo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--work", type=Path, default=Path("/tmp/quickstart_seeds"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quickstart_seeds.json")
    args = ap.parse_args()
    results = []
    for seed in args.seeds:
        results.append(run_seed(args.recipe, seed, args.work))
        record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
                  "versions": versions(), "recipe": str(args.recipe.relative_to(ROOT)), "seeds": results,
                  "summary": summary(results)}
        args.out.write_text(json.dumps(record, indent=2))  # after every seed: a partial run still reports
        print(f"seed {seed}: {'ok' if results[-1]['ok'] else 'FAILED'} in {results[-1]['wall_s']:.0f}s", flush=True)
    print(markdown(summary(results)))


if __name__ == "__main__":
    main()
