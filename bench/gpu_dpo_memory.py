"""Decoupled DPO on the GPU: peak memory and step time of each backward schedule, and the largest clip
each fits, on the Wan2.1-1.3B architecture (random weights, bf16) at 480x832.

Schedules (runtime.algorithms.dpo.dpo_backward, the code the DPO trainer runs):
  standard      both branches' graphs alive, one backward
  teleboost     two grad forwards, two surrogate backwards (TeleBoost §6.2)
  recompute     no-grad forwards for the weight, then forward+backward per branch
  winner_first  winner graph kept, loser error without grad, backward winner, then forward+backward loser
  stashed       one pair: each branch back-propagated unweighted, the winner's gradient stashed, combined
                once both errors are known (no extra forward)
The reference errors come from a frozen copy of the weights under no_grad, as in training.

    python bench/gpu_dpo_memory.py --frames 17,33,49 --out bench/results/gpu_dpo_memory.json
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import time

import torch

from gpu_wan_step import inputs, wan_1_3b
from runtime.algorithms.dpo import dpo_backward

MODES = ("standard", "teleboost", "recompute", "winner_first", "stashed")


def errors(model, x0, eps, t, text):
    s = (t / 1000).view(-1, 1, 1, 1, 1)
    x = ((1 - s) * x0.float() + s * eps.float()).to(x0.dtype)
    v = model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
    return (v.float() - (eps.float() - x0.float())).pow(2).flatten(1).mean(1)


def measure(policy, reference, frames: int, mode: str, iters: int) -> dict:
    x_w, t, text, tokens = inputs(1, frames, 480, 832, "cuda", torch.bfloat16)
    x_l = torch.randn_like(x_w)
    eps = torch.randn_like(x_w)
    with torch.no_grad():
        ref_w, ref_l = errors(reference, x_w, eps, t, text), errors(reference, x_l, eps, t, text)
    times = []
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    for i in range(iters + 1):
        torch.cuda.synchronize()
        start = time.perf_counter()
        dpo_backward(lambda: errors(policy, x_w, eps, t, text), lambda: errors(policy, x_l, eps, t, text),
                     ref_w, ref_l, beta=500.0, mode=mode, params=list(policy.parameters()))
        torch.cuda.synchronize()
        if i:  # the first iteration warms up kernels and allocator
            times.append(time.perf_counter() - start)
        policy.zero_grad(set_to_none=True)
    peak = torch.cuda.max_memory_allocated()
    return {"frames": frames, "tokens": tokens, "mode": mode, "step_s": sum(times) / len(times),
            "peak_gib": peak / 2**30, "peak_above_weights_gib": (peak - base) / 2**30}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", default="17,33,49")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    policy = wan_1_3b(torch.bfloat16).cuda()
    reference = copy.deepcopy(policy).requires_grad_(False).eval()
    rows, dead = [], set()
    for frames in (int(f) for f in args.frames.split(",")):
        for mode in args.modes.split(","):
            if mode in dead:
                rows.append({"frames": frames, "mode": mode, "oom": True})
                continue
            try:
                row = measure(policy, reference, frames, mode, args.iters)
            except torch.OutOfMemoryError:
                dead.add(mode)
                row = {"frames": frames, "mode": mode, "oom": True}
            policy.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {"benchmark": "gpu_dpo_memory", "device": torch.cuda.get_device_name(0),
              "date": datetime.date.today().isoformat(), "torch": torch.__version__, "args": vars(args),
              "rows": rows}
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
