"""Wan2.1-1.3B transformer step on a GPU: forward and forward+backward time, FLOPs, MFU and peak memory.

The baseline every trainer-overhead and MFU claim is compared with: a bare loop over the diffusers
WanTransformer3DModel built from the Wan2.1-T2V-1.3B config with random weights in bf16 (the modules
diffusers keeps in fp32 stay fp32). Variants: attention backend, torch.compile, gradient checkpointing.

    python bench/gpu_wan_step.py --frames 33 --height 480 --width 832 --out bench/results/gpu_wan_step.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import torch

from versions import versions

H100_BF16_PEAK = 989e12  # dense bf16 FLOP/s (H100 SXM); H200 has the same tensor-core peak


def wan_1_3b(dtype: torch.dtype):
    from diffusers import WanTransformer3DModel

    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
        text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    model.to(dtype)
    for name, module in model.named_modules():  # diffusers warns when these run in bf16
        if any(k in name for k in keep):
            module.float()
    return model


def inputs(batch, frames, height, width, device, dtype):
    lat_f, lat_h, lat_w = 1 + (frames - 1) // 4, height // 8, width // 8
    x = torch.randn(batch, 16, lat_f, lat_h, lat_w, device=device, dtype=dtype)
    t = torch.full((batch,), 500.0, device=device)
    text = torch.randn(batch, 512, 4096, device=device, dtype=dtype)
    tokens = lat_f * (lat_h // 2) * (lat_w // 2)
    return x, t, text, tokens


def count_flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def timed(fn, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def sdpa_context(name: str):
    """Pin one scaled-dot-product-attention kernel (flash = FA2, cudnn = cuDNN's fused attention)."""
    import contextlib

    from torch.nn.attention import SDPBackend, sdpa_kernel

    table = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
             "efficient": SDPBackend.EFFICIENT_ATTENTION}
    return sdpa_kernel([table[name]]) if name in table else contextlib.nullcontext()


def measure(args, compile_model: bool, checkpointing: bool, sdpa: str = "default") -> dict:
    with sdpa_context(sdpa):
        row = _measure(args, compile_model, checkpointing)
    row["sdpa"] = sdpa
    return row


def _measure(args, compile_model: bool, checkpointing: bool) -> dict:
    device, dtype = "cuda", torch.bfloat16
    torch.manual_seed(0)
    model = wan_1_3b(dtype).to(device)
    if checkpointing:
        model.enable_gradient_checkpointing()
    x, t, text, tokens = inputs(args.batch, args.frames, args.height, args.width, device, dtype)
    target = torch.randn_like(x)

    def eager_step():
        out = model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        (out.float() - target.float()).pow(2).mean().backward()
        model.zero_grad(set_to_none=True)

    # FLOPs are counted on the eager model, before compiling: under FlopCounterMode (a dispatch mode)
    # dynamo declines the frame and caches that, so counting through the compiled model first left
    # every later call running eagerly (the earlier "compile changes nothing" rows measured exactly that)
    fwd_flops = count_flops(lambda: model(hidden_states=x, timestep=t, encoder_hidden_states=text,
                                          return_dict=False))
    step_flops = count_flops(eager_step)
    if compile_model == "blocks":
        # Regional compilation: each repeated transformer block compiled once, fullgraph, so the
        # elementwise work around attention and the GEMMs (casts, RoPE, modulation, norms) is fused.
        model.compile_repeated_blocks(fullgraph=True)
        fwd_model = model
    else:
        fwd_model = torch.compile(model) if compile_model else model

    def forward():
        with torch.no_grad():
            return fwd_model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]

    def train_step():
        out = fwd_model(hidden_states=x, timestep=t, encoder_hidden_states=text, return_dict=False)[0]
        loss = (out.float() - target.float()).pow(2).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    torch.cuda.reset_peak_memory_stats()
    fwd_s = timed(forward, args.warmup, args.iters)
    step_s = timed(train_step, args.warmup, args.iters)
    peak = torch.cuda.max_memory_allocated() / 2**30
    del model, fwd_model
    torch.cuda.empty_cache()
    return {"compile": compile_model, "checkpointing": checkpointing, "tokens": tokens,
            "forward_tflop": fwd_flops / 1e12, "forward_s": fwd_s,
            "forward_mfu": fwd_flops / fwd_s / H100_BF16_PEAK,
            "step_tflop": step_flops / 1e12, "step_s": step_s, "step_mfu": step_flops / step_s / H100_BF16_PEAK,
            "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--variants", default="eager,compile,eager+ckpt")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    for variant in args.variants.split(","):
        sdpa = next((k for k in ("flash", "cudnn", "efficient") if k in variant), "default")
        compile_mode = "blocks" if "blocks" in variant else ("compile" in variant)
        row = measure(args, compile_model=compile_mode, checkpointing="ckpt" in variant, sdpa=sdpa)
        row["variant"] = variant
        rows.append(row)
        print(json.dumps(row), flush=True)
    record = {"benchmark": "gpu_wan_step", "device": torch.cuda.get_device_name(0),
              "date": datetime.date.today().isoformat(), "torch": torch.__version__, "versions": versions(),
              "python": platform.python_version(), "args": vars(args), "rows": rows}
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(record, handle, indent=2)


if __name__ == "__main__":
    main()
