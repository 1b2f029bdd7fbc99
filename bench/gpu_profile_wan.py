"""Where a Wan2.1-1.3B training step spends GPU time: kernels grouped into attention, GEMM, elementwise.

    python bench/gpu_profile_wan.py --frames 33 --out bench/results/gpu_profile_wan.json
"""
from __future__ import annotations

import argparse
import json

import torch

from gpu_wan_step import inputs, wan_1_3b


def group(name: str) -> str:
    n = name.lower()
    if any(k in n for k in ("fmha", "flash", "attention", "sdpa", "cudnn_generated_fort_native_sdpa")):
        return "attention"
    if any(k in n for k in ("gemm", "cutlass", "sm90_xmma", "nvjet", "matmul", "cublas")):
        return "gemm"
    if any(k in n for k in ("norm", "reduce")):
        return "norm/reduce"
    return "elementwise/other"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    model = wan_1_3b(torch.bfloat16).cuda()
    x, t, text, tokens = inputs(1, args.frames, 480, 832, "cuda", torch.bfloat16)

    def step():
        out = model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        out.float().pow(2).mean().backward()
        model.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    totals: dict[str, float] = {}
    top = []
    for evt in prof.key_averages():
        us = evt.device_time_total if hasattr(evt, "device_time_total") else evt.cuda_time_total
        if us <= 0:
            continue
        totals[group(evt.key)] = totals.get(group(evt.key), 0.0) + us / 1e3
        top.append((us / 1e3, evt.key[:90], evt.count))
    top.sort(reverse=True)
    record = {"tokens": tokens, "ms_by_group": totals, "total_ms": sum(totals.values()),
              "top_kernels": [{"ms": round(ms, 2), "name": name, "count": c} for ms, name, c in top[:25]]}
    print(json.dumps(record, indent=1))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
