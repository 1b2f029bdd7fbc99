"""vpo's SFT trainer on the GPU vs a minimal hand-written loop doing the same math on the same model.

The model is a Wan2.1 pipeline folder built here with random weights: the full Wan2.1-1.3B transformer,
the tiny Wan VAE (same 4x8x8 compression, 16 latent channels) and a one-layer UMT5 encoder of width 4096
(the transformer's text width), saved in the diffusers layout and loaded by `vpo run` through the real
`from_pretrained` code. The data are captioned noise videos written as mp4 files. `vpo run` trains
`--steps` SFT steps (bf16, batch 1, no activation checkpointing); its per-step time comes from the
timestamps of metrics.jsonl (steps after the first two), and `vpo plan`'s predicted step time and peak
memory for the same recipe are recorded beside it (calibration). The bare loop then runs the same step on the
same transformer (flow-matching loss on VAE latents, backward, grad-norm clip, AdamW) for comparison.

    python bench/gpu_trainer_overhead.py --frames 33 --size 480x832 --out bench/results/gpu_trainer_overhead.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def build_pipeline(folder: Path) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    from runtime.models.layout import save_pipeline
    from runtime.models.tiny import WAN_TEXT_LEN, tiny_tokenizer, tiny_wan_vae, wan21_1_3b_transformer

    torch.manual_seed(0)
    tok = tiny_tokenizer(WAN_TEXT_LEN)
    text = UMT5EncoderModel(UMT5Config(vocab_size=len(tok), d_model=4096, d_kv=64, d_ff=256, num_layers=1,
                                       num_heads=4, relative_attention_num_buckets=8, dropout_rate=0.0)).eval()
    parts = {"transformer": wan21_1_3b_transformer(torch.float32, "cpu"), "vae": tiny_wan_vae(),
             "text_encoder": text, "tokenizer": tok, "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0)}
    save_pipeline(folder, "WanPipeline", parts, boundary_ratio=None, expand_timesteps=False)


def write_videos(folder: Path, count: int, frames: int, h: int, w: int) -> None:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(count):
        path = folder / f"clip{i}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 16, (w, h))
        for _ in range(frames):
            writer.write(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        writer.release()
        records.append({"video": path.name, "caption": "a red car moving left on the street"})
    (folder / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


RECIPE = """vpo 0.1
use std.models

cluster gpu = local {{ gpu = "H100-80GB", gpus_per_node = 1 }}

model wan = models.wan21_t2v_1_3b {{ path = "{path}", dtype = bf16 }}

stage sft = sft(wan) on gpu {{
  data                   = videos("{videos}/*.mp4", captions = "{videos}/captions.jsonl")
  frames                 = {frames}
  resolution             = [{h}, {w}]
  steps                  = {steps}
  batch                  = 1
  lr                     = 1e-5
  gradient_checkpointing = false
  checkpoint_every       = 1000
}}
"""


def vpo_step_time(tmp: Path, args, h: int, w: int) -> tuple[float, str, dict]:
    recipe = tmp / "sft.vpo"
    recipe.write_text(RECIPE.format(path=tmp / "wan", videos=tmp / "videos", frames=args.frames, h=h, w=w,
                                    steps=args.steps))
    plan = subprocess.run([sys.executable, "-m", "vpolang.cli", "plan", str(recipe), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    predicted = json.loads(plan.stdout)["jobs"][0]["estimate"]
    out = subprocess.run([sys.executable, "-m", "vpolang.cli", "run", str(recipe), "--run-dir", str(tmp / "run"),
                          "--progress", "plain"], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"vpo run failed:\n{out.stdout}\n{out.stderr}")
    [metrics] = (tmp / "run" / "sft").glob("*/metrics.jsonl")
    times = [json.loads(line)["time"] for line in metrics.read_text().splitlines()]
    gaps = [b - a for a, b in zip(times[2:], times[3:])]
    return sum(gaps) / len(gaps), out.stderr, predicted


def bare_step_time(tmp: Path, args, h: int, w: int) -> float:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    model = WanTransformer3DModel.from_pretrained(tmp / "wan" / "transformer", torch_dtype=torch.bfloat16).cuda()
    vae = AutoencoderKLWan.from_pretrained(tmp / "wan" / "vae").cuda()
    video = torch.rand(1, 3, args.frames, h, w, device="cuda") * 2 - 1
    with torch.no_grad():
        x0 = vae.encode(video).latent_dist.mean.to(torch.bfloat16)
    text = torch.randn(1, 16, 4096, device="cuda", dtype=torch.bfloat16)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for i in range(args.steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        eps = torch.randn_like(x0)
        s = torch.rand(1, device="cuda")
        xt = ((1 - s).view(-1, 1, 1, 1, 1) * x0 + s.view(-1, 1, 1, 1, 1) * eps).to(torch.bfloat16)
        v = model(hidden_states=xt, timestep=s * 1000, encoder_hidden_states=text, return_dict=False)[0]
        loss = (v.float() - (eps.float() - x0.float())).pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        float(loss)  # the trainer reads the loss every step too
        torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--size", default="480x832")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", default="bench/results/gpu_trainer_overhead.json")
    args = parser.parse_args()
    h, w = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        build_pipeline(tmp / "wan")
        write_videos(tmp / "videos", 4, args.frames, h, w)
        vpo_s, log, predicted = vpo_step_time(tmp, args, h, w)
        bare_s = bare_step_time(tmp, args, h, w)
    record = {"device": torch.cuda.get_device_name(), "date": datetime.date.today().isoformat(),
              "torch": torch.__version__, "args": vars(args),
              "command": f"python bench/gpu_trainer_overhead.py --frames {args.frames} --size {args.size} "
                         f"--steps {args.steps}",
              "vpo_sft_step_s": vpo_s, "bare_step_s": bare_s, "ratio": vpo_s / bare_s,
              "planned_step_s": predicted["step_time_s"], "planned_peak_gib": predicted["peak_memory_gib"],
              "planned_vs_measured": predicted["step_time_s"] / vpo_s, "vpo_log_tail": log[-1500:]}
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(json.dumps({k: v for k, v in record.items() if k != "vpo_log_tail"}, indent=2))


if __name__ == "__main__":
    main()
