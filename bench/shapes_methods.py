"""Method comparisons on the std.shapes world, on the CPU: each study is one recipe whose stages are the
methods, run end to end with `vpo run` once per seed; its evaluate job samples every method on the same
held-out prompts and noise. The table gives, per method and metric, the mean over seeds with a 95%
t-interval (seeds are the unit of replication), and the mean paired gain over the untrained model.

    python bench/shapes_methods.py dpo  --seeds 0 1 2 --out bench/results/shapes_dpo_methods.json
    python bench/shapes_methods.py grpo --seeds 0 1 2 --out bench/results/shapes_grpo_methods.json
    python bench/shapes_methods.py grpo2026 --seeds 0 1 2 --out bench/results/shapes_grpo_2026.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}

HEAD = """vpo 0.1
use std.shapes

param seed = 0

model tiny = shapes.tiny_dit { layers = 2, hidden = 64, heads = 2, ffn = 128 }

reward crisp = weight_free { metric = sharpness }
reward still = weight_free { metric = temporal_flicker }
"""

# DPO at equal optimiser steps (48): pairs judged once from the start policy (offline, on-policy),
# judged every step from the current policy (OnlineVPO), and three IPO rounds of 16 steps each.
DPO = HEAD + """
stage offline = dpo(tiny) {
  pairs = on_policy(tiny, prompts = shapes.prompts(n = 32, split = train), n = 4, judges = [crisp], sample_steps = 6)
  beta  = 50
  steps = 48
  batch = 8
  lr    = 3e-4
  seed  = seed
}

stage online = dpo(tiny) {
  pairs = online(shapes.prompts(n = 32, split = train), n = 4, judges = [crisp], sample_steps = 6)
  beta  = 50
  steps = 48
  batch = 8
  lr    = 3e-4
  seed  = seed
}

iterate ipo(policy = tiny) rounds 3 {
  stage tuned = dpo(policy) {
    pairs = on_policy(policy, prompts = shapes.prompts(n = 32, split = train), n = 4, judges = [crisp], sample_steps = 6)
    beta  = 50
    steps = 16
    batch = 8
    lr    = 3e-4
    seed  = seed
  }
  next policy = tuned
}

stage report = evaluate(online) {
  against      = [tiny, offline, ipo[1].tuned, ipo[2].tuned, ipo.policy]
  prompts      = shapes.prompts(n = 48, split = test, seed = 5)
  metrics      = [crisp, still, shapes.alignment]
  sample_steps = 6
  seed         = seed
  save_samples = 0
}
"""

GRPO_STAGE = """
stage {name} = grpo(tiny) {{
  prompts      = shapes.prompts(n = 32, split = train)
  group_size   = 8
  batch        = 4
  steps        = 24
  sample_steps = 6
  lr           = 3e-4
  kl           = 0.01
  seed         = seed
  reward       = {reward}
  {extra}
}}
"""
GRPO_VARIANTS = {
    "weighted": ("crisp + still", ""),
    "vipo": ("crisp + still", 'with vipo { backbone = "shapes" }'),
    "bpgo": ("crisp + still", "with bpgo { prior = running_mean }"),
    "self_paced": ("crisp + still", "with self_paced { phases = [crisp, still], saturate_below = 0.05 }"),
    "joint": ("joint([crisp, still], balance = min_norm)", ""),
}
GRPO = HEAD + "".join(GRPO_STAGE.format(name=n, reward=r, extra=e) for n, (r, e) in GRPO_VARIANTS.items()) + """
stage report = evaluate(weighted) {
  against      = [tiny, vipo, bpgo, self_paced, joint]
  prompts      = shapes.prompts(n = 48, split = test, seed = 5)
  metrics      = [crisp, still, shapes.alignment]
  sample_steps = 6
  seed         = seed
  save_samples = 0
}
"""
# The 2026 options (docs/algorithms.md §S3) at equal rollouts: 24 steps x 4 prompts x 8 videos each.
GRPO_2026_VARIANTS = {
    "grpo": ("crisp + still", ""),
    "window": ("crisp + still", "with window { size = 2, shift_every = 8 }"),
    "cps": ("crisp + still", "noise = cps"),
    "guard": ("crisp + still", "guard = true"),
    "velocity_kl": ("crisp + still", "kl_space = velocity"),
    "win_rate": ("crisp + still", "reward_as = win_rate"),
    "nft": ("crisp + still", "objective = nft\n  noise = ode"),
}
GRPO_2026 = HEAD + "".join(GRPO_STAGE.format(name=n, reward=r, extra=e) for n, (r, e) in GRPO_2026_VARIANTS.items()) \
    + """
stage report = evaluate(grpo) {
  against      = [tiny, window, cps, guard, velocity_kl, win_rate, nft]
  prompts      = shapes.prompts(n = 48, split = test, seed = 5)
  metrics      = [crisp, still, shapes.alignment]
  sample_steps = 6
  seed         = seed
  save_samples = 0
}
"""
STUDIES = {"dpo": DPO, "grpo": GRPO, "grpo2026": GRPO_2026}
TRAINING = {"grpo2026": list(GRPO_2026_VARIANTS)}  # stages whose wall time per step and KL are tabled


def run_seed(recipe: str, seed: int, work: Path) -> tuple[dict, float]:
    path = work / f"study-{seed}.vpo"
    path.write_text(recipe)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", "run", str(path), "--set", f"seed={seed}",
                          "--run-dir", str(work / f"run-{seed}"), "--progress", "quiet"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{out.stderr[-4000:]}")
    folder = work / f"run-{seed}" / "report"
    current = (folder / "current").read_text().strip()
    record = json.loads((folder / current / "artifacts" / "metrics" / "metrics.json").read_text())
    return record["models"], time.perf_counter() - start


def training_stats(run_dir: Path, stages: list[str]) -> dict[str, dict[str, float]]:
    """Per training stage: wall seconds per step (between the first and last logged step) and the mean
    logged KL (in the stage's own kl_space: not comparable across spaces)."""
    out = {}
    for stage in stages:
        current = (run_dir / stage / "current").read_text().strip()
        rows = [json.loads(line) for line in (run_dir / stage / current / "metrics.jsonl").read_text().splitlines()]
        span = (rows[-1]["time"] - rows[0]["time"]) / max(1, rows[-1]["step"] - rows[0]["step"])
        out[stage] = {"s_per_step": span, "kl": statistics.fmean(r.get("kl", 0.0) for r in rows)}
    return out


def interval(values: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = T975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def summarise(per_seed: list[dict], baseline: str = "tiny") -> dict:
    methods = list(per_seed[0])
    metrics = list(per_seed[0][methods[0]])
    table = {}
    for method in methods:
        table[method] = {}
        for metric in metrics:
            values = [run[method][metric]["mean"] for run in per_seed]
            gains = [run[method][metric]["mean"] - run[baseline][metric]["mean"] for run in per_seed]
            mean, lo, hi = interval(values)
            gain, glo, ghi = interval(gains)
            table[method][metric] = {"mean": mean, "ci95": [lo, hi], "gain": gain, "gain_ci95": [glo, ghi],
                                     "per_seed": values}
    return table


def markdown(table: dict) -> str:
    metrics = list(next(iter(table.values())))
    lines = ["| method | " + " | ".join(f"{m} (gain over untrained)" for m in metrics) + " |",
             "| --- |" + " --- |" * len(metrics)]
    for method, row in table.items():
        cells = [f"{row[m]['mean']:.4f} ({row[m]['gain']:+.4f} [{row[m]['gain_ci95'][0]:+.4f}, "
                 f"{row[m]['gain_ci95'][1]:+.4f}])" for m in metrics]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(STUDIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    per_seed, seconds, training = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            models, took = run_seed(STUDIES[args.study], seed, Path(tmp))
            per_seed.append(models)
            seconds.append(took)
            if args.study in TRAINING:
                training.append(training_stats(Path(tmp) / f"run-{seed}", TRAINING[args.study]))
            print(f"seed {seed}: {took:.0f} s", flush=True)
    table = summarise(per_seed)
    print(markdown(table))
    steps = {s: {k: statistics.fmean(run[s][k] for run in training) for k in ("s_per_step", "kl")}
             for s in TRAINING.get(args.study, [])}
    for stage, row in steps.items():
        print(f"{stage}: {row['s_per_step']:.2f} s/step, mean logged kl {row['kl']:.3g}")
    if args.out:
        args.out.write_text(json.dumps({
            "study": args.study, "seeds": args.seeds, "recipe": STUDIES[args.study], "table": table,
            "wall_s_per_seed": seconds, "training": steps, "machine": f"{platform.node()} ({platform.processor() or platform.machine()}, "
            f"{__import__('os').cpu_count()} CPUs)", "date": datetime.date.today().isoformat(),
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
