"""SFT, DPO and GRPO steps through `vpo run` on the GPU, with DeepSpeed ZeRO, against `vpo plan`.

The model is the Wan2.1 pipeline folder of gpu_trainer_overhead.py (the full Wan2.1-1.3B transformer with
random weights, tiny VAE, one-layer UMT5 of the right width), loaded by the real `from_pretrained` code.
Each configuration is a one-stage recipe run by `vpo run`; its step time is the mean gap between the
timestamps of metrics.jsonl after the first two steps, its peak memory the trainer's own
`peak_memory_gib` metric (torch.cuda.max_memory_allocated), and `vpo plan`'s predicted step time and
peak for the same recipe are recorded beside them (the planner's calibration reads this file). With
`--bare`, the hand-written loop of bare_steps.py runs the same step on the same folder for the overhead ratio.

    python bench/gpu_trainers.py --configs all --bare --out bench/results/gpu_trainers.json
    python bench/gpu_trainers.py --tiny --configs sft-17 --device cpu   # a smoke test without a GPU
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gpu_trainer_overhead import build_pipeline, write_videos
from versions import versions

ROOT = Path(__file__).resolve().parents[1]

HEAD = """vpo 0.1
use std.models

cluster gpu = local {{ gpu = "H100-80GB", gpus_per_node = 1 }}

model wan = models.wan21_t2v_1_3b {{ path = "{path}", dtype = bf16 }}
dataset clips = videos("{videos}/*.mp4", captions = "{videos}/captions.jsonl")
dataset train_prompts = prompts("{videos}/prompts.txt")
reward still = weight_free {{ metric = temporal_flicker }}
"""

COMMON = """  frames                 = {frames}
  resolution             = [{h}, {w}]
  steps                  = {steps}
  lr                     = 1e-5
  gradient_checkpointing = false
  checkpoint_every       = 1000
{zero}"""

STAGES = {
    "sft": "stage job = sft(wan) on gpu {{\n  data  = clips\n  batch = 1\n" + COMMON + "}}\n",
    "dpo": "stage job = dpo(wan) on gpu {{\n  pairs    = synthetic(clips, negatives = [reverse])\n  batch    = 1\n"
           "  beta     = 500\n  backward = {backward}\n" + COMMON + "}}\n",
    "grpo": "stage job = grpo(wan) on gpu {{\n  prompts        = train_prompts\n  reward         = still\n"
            "  group_size     = 2\n  batch          = 1\n  sample_steps   = 6\n  train_fraction = 0.5\n"
            "  kl             = 0.01\n" + COMMON + "}}\n",
}

SIZES = {"17": (17, 480, 832), "33": (33, 480, 832), "small": (17, 320, 576)}
# name -> (stage kind, clip, zero_stage or None for the default, DPO backward)
CONFIGS = {
    "sft-17": ("sft", "17", None, None), "sft-small": ("sft", "small", None, None),
    "sft-33": ("sft", "33", None, None), "sft-33-zero3": ("sft", "33", 3, None),
    "dpo-17": ("dpo", "17", None, "standard"), "dpo-small": ("dpo", "small", None, "standard"),
    "dpo-17-decoupled": ("dpo", "17", None, "decoupled"),
    "grpo-17": ("grpo", "17", None, None), "grpo-small": ("grpo", "small", None, None),
    "sft-17-compiled": ("sft", "17", None, None), "dpo-17-compiled": ("dpo", "17", None, "standard"),
}


def recipe_text(tmp: Path, name: str, steps: int) -> str:
    kind, clip, zero, backward = CONFIGS[name]
    frames, h, w = SIZES[clip]
    extra = f"  zero_stage             = {zero}\n" if zero is not None else ""
    extra += "  compile                = true\n" if name.endswith("-compiled") else ""
    stage = STAGES[kind].format(frames=frames, h=h, w=w, steps=steps, backward=backward, zero=extra)
    return HEAD.format(path=tmp / "wan", videos=tmp / "videos") + "\n" + stage


def run_config(tmp: Path, name: str, steps: int, env: dict) -> dict:
    recipe = tmp / f"{name}.vpo"
    recipe.write_text(recipe_text(tmp, name, steps))
    plan = subprocess.run([sys.executable, "-m", "vpolang.cli", "plan", str(recipe), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    if plan.returncode != 0:
        return {"error": f"vpo plan failed: {plan.stdout[-2000:]}{plan.stderr[-2000:]}"}
    predicted = next(j for j in json.loads(plan.stdout)["jobs"] if j["id"] == "job")["estimate"]
    start = time.time()
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", "run", str(recipe), "--run-dir", str(tmp / name),
                          "--progress", "plain"], capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.time() - start
    found = list((tmp / name / "job").glob("*/metrics.jsonl"))
    logs = list((tmp / name / "job").glob("*/log.txt"))
    log = logs[0].read_text()[-3000:] if logs else ""
    if out.returncode != 0 or not found:
        return {"error": f"vpo run failed ({out.returncode}): {out.stderr[-2000:]}\n{log}"}
    records = [json.loads(line) for line in found[0].read_text().splitlines()]
    times = [r["time"] for r in records]
    gaps = [b - a for a, b in zip(times[2:], times[3:])]
    step_s = sum(gaps) / len(gaps)
    peak = max((r.get("peak_memory_gib", 0.0) for r in records), default=0.0)
    return {"step_s": step_s, "peak_memory_gib": peak, "planned_step_s": predicted["step_time_s"],
            "planned_peak_gib": predicted["peak_memory_gib"], "planned_vs_measured": predicted["step_time_s"] / step_s,
            "wall_s": wall, "optimiser": next((line.split("] ", 1)[1] for line in log.splitlines()
                                               if "optimiser:" in line), None), "log_tail": log[-800:]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="all", help=f"comma-separated of {', '.join(CONFIGS)}, or all")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--tiny", action="store_true", help="a tiny Wan (smoke test on the CPU)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--bare", action="store_true", help="also time bare_steps.py's hand-written loop (GPU)")
    parser.add_argument("--out", default="bench/results/gpu_trainers.json")
    args = parser.parse_args()
    names = list(CONFIGS) if args.configs == "all" else args.configs.split(",")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}", "VPO_DEVICE": args.device}
    results = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.tiny:
            from runtime.models.tiny import save_tiny_wan

            save_tiny_wan(tmp / "wan")
            SIZES.update({"17": (5, 32, 32), "33": (9, 32, 32), "small": (5, 16, 32)})  # its short RoPE table
        else:
            build_pipeline(tmp / "wan")
        frames = max(SIZES[CONFIGS[n][1]][0] for n in names)
        h, w = SIZES["17"][1:]
        write_videos(tmp / "videos", 4, frames, h, w)
        (tmp / "videos" / "prompts.txt").write_text("a red car moving left on the street\na dog running\n")
        for config in names:
            results[config] = run_config(tmp, config, args.steps, env)
            if args.bare and "error" not in results[config] and CONFIGS[config][2] is None \
                    and CONFIGS[config][3] != "decoupled" and not config.endswith("-compiled"):
                from bare_steps import BARE

                frames, h, w = SIZES[CONFIGS[config][1]]
                bare = BARE[CONFIGS[config][0]](tmp / "wan", frames, h, w, args.steps)
                torch.cuda.empty_cache()
                results[config].update(bare_step_s=bare, vpo_vs_bare=results[config]["step_s"] / bare)
            print(config, json.dumps({k: v for k, v in results[config].items() if k != "log_tail"}), flush=True)
            record = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                      "date": datetime.date.today().isoformat(), "torch": torch.__version__, "versions": versions(), "args": vars(args),
                      "command": f"python bench/gpu_trainers.py --configs {args.configs} --steps {args.steps}"
                                 + (" --bare" if args.bare else ""),
                      "results": results}
            Path(args.out).write_text(json.dumps(record, indent=2))  # after each: a cut-off run keeps its part


if __name__ == "__main__":
    main()
