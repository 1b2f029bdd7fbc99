"""FSDP2 against torch AdamW on one GPU, and sequence-parallel scaling on the GPUs a session is lent.

Two studies of the Wan2.1-1.3B transformer (random weights, bf16 compute, diffusers' fp32 modules kept
fp32), one flow-matching training step (forward, backward, optimiser step) timed per phase with CUDA
synchronised between phases, peak memory per GPU recorded:

- `--study fsdp` (one process): `torch-master` (runtime/trainers/updater.py's TorchUpdater: bf16
  weights, fp32 master copies, fused AdamW) against `fsdp2` (torch.distributed.fsdp.fully_shard on each
  transformer block and the root over a one-GPU mesh; fp32 sharded parameters as the masters, bf16
  compute and fp32 gradient reduction through MixedPrecisionPolicy; AdamW over the DTensor shards).
  On one GPU FSDP2 partitions nothing: the question is its per-step overhead against the bare loop.
- `--study sp` (torchrun, N processes): sequence parallelism of degree k = 1, 2, ... N
  (runtime/parallel/sequence.py: diffusers' Ulysses attention), each rank holding 1/k of the clip's
  tokens; forward+backward time and peak activations per GPU, to check the planner's activations / k and
  its all-to-all time (vpolang/estimate/estimate.py: all_to_all_seconds) against the GPU.

    python bench/gpu_fsdp_sp.py --study fsdp --out bench/results/gpu_fsdp_sp_fsdp.json
    torchrun --standalone --nproc_per_node=2 bench/gpu_fsdp_sp.py --study sp --out bench/results/gpu_fsdp_sp_sp.json
    python bench/gpu_fsdp_sp.py --study fsdp --tiny --device cpu          # smoke test (no GPU)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from versions import versions  # noqa: E402


def build(tiny: bool, device: str, dtype: torch.dtype):
    torch.manual_seed(0)
    if tiny:
        from runtime.models.tiny import tiny_wan_transformer

        model = tiny_wan_transformer().to(dtype)
        for name, module in model.named_modules():
            if any(k in name for k in model._keep_in_fp32_modules or []):
                module.float()
    else:
        from gpu_wan_step import wan_1_3b

        model = wan_1_3b(dtype)
    return model.to(device)


def step_inputs(model, tiny: bool, frames: int, height: int, width: int, device: str, dtype: torch.dtype):
    if tiny:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(1, 16, 3, 8, 8, generator=g).to(device, dtype)
        text = torch.randn(1, 16, model.config.text_dim, generator=g).to(device, dtype)
        return x, torch.full((1,), 500.0, device=device), text, 48
    from gpu_wan_step import inputs

    x, t, text, tokens = inputs(1, frames, height, width, device, dtype)
    return x, t, text[..., :model.config.text_dim].contiguous(), tokens


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def torch_master(model, lr: float, device: str):
    from runtime.trainers.updater import TorchUpdater

    up = TorchUpdater(model, {"lr": lr, "grad_clip": 1.0}, fused=device.startswith("cuda"))
    return model, up.backward, up.step


def fsdp2(model, lr: float, device: str):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    model.float()  # the sharded parameters are the fp32 masters
    mesh = init_device_mesh(torch.device(device).type, (int(os.environ.get("WORLD_SIZE", "1")),))
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if device.startswith("cuda") else MixedPrecisionPolicy()
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, foreach=True)

    def step() -> float:
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    return model, lambda loss: loss.backward(), step


def measure_fsdp(name: str, args) -> dict:
    dtype = torch.float32 if args.device == "cpu" else torch.bfloat16
    model = build(args.tiny, args.device, dtype)
    module, backward, step = {"torch-master": torch_master, "fsdp2": fsdp2}[name](model, 1e-5, args.device)
    x, t, text, tokens = step_inputs(model, args.tiny, args.frames, *args.hw, args.device, dtype)
    target = torch.randn_like(x)
    phases = {"forward": [], "backward": [], "step": []}
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    for i in range(args.warmup + args.iters):
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
        if i >= args.warmup:
            for key, a, b in zip(phases, marks, marks[1:]):
                phases[key].append(b - a)
    row = {k: sum(v) / len(v) for k, v in phases.items()}
    row.update(total=sum(row.values()), tokens=tokens)
    if args.device.startswith("cuda"):
        row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def measure_sp(degree: int, args) -> dict:
    """Forward+backward of one clip with its tokens split over `degree` ranks (every rank of the job
    takes part: the ranks outside the groups of `degree` run their own group)."""
    import torch.distributed as dist

    from runtime.parallel import sequence

    dtype = torch.float32 if args.device == "cpu" else torch.bfloat16
    model = build(args.tiny, args.device, dtype)
    layout = sequence.Layout(dist.get_world_size(), degree, dist.get_rank())
    sequence.enable(model, layout, args.device)
    x, t, text, tokens = step_inputs(model, args.tiny, args.frames, *args.hw, args.device, dtype)
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(args.warmup + args.iters):
        sync(args.device)
        start = time.perf_counter()
        out = model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        out.float().pow(2).mean().backward()
        sync(args.device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
        model.zero_grad(set_to_none=True)
    row = {"fwd_bwd_s": sum(times) / len(times), "tokens": tokens, "tokens_per_rank": tokens // degree}
    if args.device.startswith("cuda"):
        row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--study", choices=["fsdp", "sp"], required=True)
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--size", default="480x832")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.hw = tuple(map(int, args.size.split("x")))
    import torch.distributed as dist

    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29541")):
        os.environ.setdefault(key, value)
    if args.device.startswith("cuda"):
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        args.device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    dist.init_process_group("nccl" if args.device.startswith("cuda") else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {}
    names = ["torch-master", "fsdp2"] if args.study == "fsdp" else [k for k in range(1, world + 1) if world % k == 0]
    for name in names:
        try:
            results[str(name)] = measure_fsdp(name, args) if args.study == "fsdp" else measure_sp(name, args)
        except Exception as exc:  # one variant out of memory must not lose the others
            results[str(name)] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
        if rank == 0:
            print(name, json.dumps(results[str(name)]), flush=True)
    if rank == 0 and args.out:
        record = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                  "gpus": world, "date": datetime.date.today().isoformat(), "versions": versions(),
                  "args": {k: v for k, v in vars(args).items() if k != "hw"},
                  "command": " ".join(sys.argv), "results": results}
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
