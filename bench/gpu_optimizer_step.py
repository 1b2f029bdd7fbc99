"""Where a training step's time goes between the backward and the weights: optimiser variants on one GPU.

The same Wan2.1-1.3B transformer (random weights, bf16, diffusers' fp32 modules kept fp32) and the same
flow-matching step, with the forward, the backward and the optimiser step timed separately (CUDA
synchronised between phases), for the ways a trainer can apply AdamW with gradient clipping:

- torch-bf16: torch AdamW on the bf16 weights themselves (no master copy: updates below a weight's bf16
  resolution are lost, which at lr 1e-5 is most of them)
- torch-master: fp32 master weights and fused torch AdamW, gradients cast to fp32, weights copied back
  (the math DeepSpeed's bf16 mode does, written by hand: the bare-loop reference)
- zero0 / zero1 / zero2 / zero3: DeepSpeed through vpo's own configuration (runtime.trainers.updater)
- zero2-overlap: ZeRO-2 with overlap_comm and contiguous gradients, larger buckets

With `--profile NAME` the step of that variant is also profiled and its top host and device ops kept.

    python bench/gpu_optimizer_step.py --out bench/results/gpu_optimizer_step.json
    python bench/gpu_optimizer_step.py --tiny --device cpu --variants torch-master,zero2   # smoke test
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import time

import torch

from versions import versions

VARIANTS = ["torch-bf16", "torch-master", "zero0", "zero1", "zero2", "zero2-overlap", "zero3"]


def build(tiny: bool, device: str):
    from gpu_wan_step import wan_1_3b

    torch.manual_seed(0)
    if tiny:
        from runtime.models.tiny import tiny_wan_transformer

        model = tiny_wan_transformer().to(torch.bfloat16)
        for name, module in model.named_modules():
            if any(k in name for k in model._keep_in_fp32_modules or []):
                module.float()
    else:
        model = wan_1_3b(torch.bfloat16)
    return model.to(device)


class MasterAdamW:
    """fp32 master weights for bf16 parameters, fused AdamW where the device has it."""

    def __init__(self, params, lr: float, fused: bool):
        self.params = list(params)
        self.masters = [p.detach().float().clone().requires_grad_(True) for p in self.params]
        self.opt = torch.optim.AdamW(self.masters, lr=lr, weight_decay=0.0, fused=fused or None)

    def step(self, clip: float) -> float:
        grads = [p.grad.float() for p in self.params]
        norm = torch.nn.utils.get_total_norm(grads)
        scale = (clip / (norm + 1e-6)).clamp(max=1.0)
        torch._foreach_mul_(grads, scale)
        for m, g in zip(self.masters, grads):
            m.grad = g
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            torch._foreach_copy_([p.data for p in self.params], self.masters)
        for p in self.params:
            p.grad = None
        return float(norm)


def updater(name: str, model, lr: float, device: str):
    """(module to call, backward(loss), step()) for a variant."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "torch-bf16":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

        def step():
            norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            return float(norm)
        return model, lambda loss: loss.backward(), step
    if name == "torch-master":
        opt = MasterAdamW(params, lr, fused=device.startswith("cuda"))
        return model, lambda loss: loss.backward(), lambda: opt.step(1.0)
    import deepspeed

    from runtime.trainers.updater import _groups_by_dtype, deepspeed_config

    stage = int(name[4])
    config = deepspeed_config({"lr": lr, "grad_clip": 1.0}, model, stage)
    if name.endswith("-overlap"):
        config["zero_optimization"].update(overlap_comm=True, contiguous_gradients=True,
                                           reduce_bucket_size=int(5e8), allgather_bucket_size=int(5e8))
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=_groups_by_dtype(params), config=config)
    return engine, engine.backward, lambda: (engine.step(), float(engine.get_global_grad_norm() or 0.0))[1]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(name: str, args, shape) -> dict:
    from gpu_wan_step import inputs

    model = build(args.tiny, args.device)
    module, backward, step = updater(name, model, 1e-5, args.device)
    x, t, text, tokens = inputs(1, *shape, args.device, torch.bfloat16)
    text = text[..., :model.config.text_dim].contiguous()
    target = torch.randn_like(x)
    phases = {"forward": [], "backward": [], "step": []}

    def one(record: bool):
        marks = [time.perf_counter()]
        out = module(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        loss = (out.float() - target.float()).pow(2).mean()
        sync(args.device)
        marks.append(time.perf_counter())
        backward(loss)
        sync(args.device)
        marks.append(time.perf_counter())
        step()
        sync(args.device)
        marks.append(time.perf_counter())
        if record:
            for key, a, b in zip(phases, marks, marks[1:]):
                phases[key].append(b - a)

    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for i in range(args.warmup + args.iters):
        one(i >= args.warmup)
    row = {k: sum(v) / len(v) for k, v in phases.items()}
    row["total"] = sum(row.values())
    row["tokens"] = tokens
    if args.device.startswith("cuda"):
        row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    if args.profile == name:
        row["profile"] = profile(one, args.device)
    del module, model
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return row


def profile(one, device: str) -> dict:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with torch_profile(activities=activities) as prof:
        one(False)
    table = prof.key_averages()
    host = sorted(table, key=lambda e: e.self_cpu_time_total, reverse=True)[:25]
    out = {"host_top": [[e.key, e.count, round(e.self_cpu_time_total / 1e3, 2)] for e in host]}
    if device.startswith("cuda"):
        dev = sorted(table, key=lambda e: getattr(e, "self_device_time_total", 0), reverse=True)[:25]
        out["device_top"] = [[e.key, e.count, round(e.self_device_time_total / 1e3, 2)] for e in dev]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", default="480x832")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--profile", default="", help="a variant whose step is also profiled")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="bench/results/gpu_optimizer_step.json")
    args = parser.parse_args()
    h, w = map(int, args.size.split("x"))
    shape = (args.frames, h, w) if not args.tiny else (5, 32, 32)
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29533")):
        os.environ.setdefault(key, value)
    import deepspeed

    deepspeed.init_distributed(dist_backend="nccl" if args.device.startswith("cuda") else "gloo",
                               auto_mpi_discovery=False)
    results = {}
    for name in args.variants.split(","):
        try:
            results[name] = measure(name, args, shape)
        except Exception as exc:  # one variant out of memory must not lose the others
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "profile"}), flush=True)
        record = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                  "date": datetime.date.today().isoformat(), "torch": torch.__version__, "versions": versions(),
                  "deepspeed": deepspeed.__version__, "args": vars(args),
                  "command": f"python bench/gpu_optimizer_step.py --variants {args.variants} --frames {args.frames} "
                             f"--size {args.size}", "results": results}
        with open(args.out, "w") as f:
            json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
