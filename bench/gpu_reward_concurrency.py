"""Reward concurrency on one GPU: the makespan of four light rewards scored serially, on one CUDA stream
per reward (threads), and in memory-budgeted groups, over the same rollout batch; scores are checked
equal to serial's (runtime.rewards.concurrent.benchmark_modes).

The rewards are full-size architectures with random weights, saved to local folders and loaded through
the runtime's real loaders: CLIP ViT-B/16 score, CLIP ViT-L/14 aesthetic (linear head), DINOv2-base
background consistency, and the weight-free temporal flicker (frames shrunk on the GPU, as in training).

    python bench/gpu_reward_concurrency.py --out bench/results/gpu_reward_concurrency.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

import torch

from runtime.rewards import tiny
from runtime.rewards.backbones import load_backbone
from runtime.rewards.clip import AESTHETIC_HEAD, load_aesthetic, load_clip_score
from runtime.rewards.concurrent import benchmark_modes
from runtime.rewards.feature_consistency import FeatureConsistencyReward
from runtime.rewards.weight_free import WeightFreeReward

CLIP_SIZES = {  # (image, patch, width, layers, heads, projection): ViT-B/16 and ViT-L/14
    "b16": (224, 16, 768, 12, 12, 512), "l14": (224, 14, 1024, 24, 16, 768)}


def save_clip(folder: Path, size: str) -> Path:
    from safetensors.torch import save_file
    from transformers import CLIPConfig, CLIPModel

    image, patch, width, layers, heads, proj = CLIP_SIZES[size]
    ids = tiny.write_tokenizer(folder, tiny.CLIP_SPECIAL, eos="<|endoftext|>", pad="<|endoftext|>",
                               bos="<|startoftext|>")
    text = dict(vocab_size=ids["size"], hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                num_attention_heads=8, max_position_embeddings=77, bos_token_id=ids["<|startoftext|>"],
                eos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"])
    vision = dict(image_size=image, patch_size=patch, hidden_size=width, intermediate_size=4 * width,
                  num_hidden_layers=layers, num_attention_heads=heads)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj)).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"shortest_edge": image}, "crop_size": {"height": image, "width": image}}))
    save_file({"weight": torch.randn(1, proj) * 0.02, "bias": torch.full((1,), 5.0)}, str(folder / AESTHETIC_HEAD))
    return folder


def save_dinov2_base(folder: Path) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    Dinov2Model(Dinov2Config(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, image_size=224,
                             patch_size=14)).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--size", default="480x832")
    parser.add_argument("--score-frames", type=int, default=8, help="frames each CLIP reward looks at")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-gib", type=float, default=None)
    parser.add_argument("--out", default="bench/results/gpu_reward_concurrency.json")
    args = parser.parse_args()
    h, w = map(int, args.size.split("x"))
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rewards = {
            "clip_b16": load_clip_score(save_clip(root / "clip_b16", "b16"), args.score_frames).to("cuda"),
            "aesthetic_l14": load_aesthetic(save_clip(root / "clip_l14", "l14"), args.score_frames).to("cuda"),
            "dinov2_background": FeatureConsistencyReward(
                "background", load_backbone(str(save_dinov2_base(root / "dinov2")))).to("cuda"),
            "flicker": WeightFreeReward("temporal_flicker", 64).to("cuda"),
        }
        videos = (torch.rand(args.videos, args.frames, 3, h, w, device="cuda") * 2 - 1)
        prompts = [f"a red circle moving left, take {i}" for i in range(args.videos)]
        results = benchmark_modes(rewards, videos, prompts, args.budget_gib, args.repeats)
    serial = results["serial"].makespan_s
    record = {
        "device": torch.cuda.get_device_name(), "date": datetime.date.today().isoformat(),
        "torch": torch.__version__, "args": vars(args),
        "command": "python bench/gpu_reward_concurrency.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"),
        "per_reward_serial_s": results["serial"].seconds,
        "modes": {mode: {"makespan_s": r.makespan_s, "vs_serial": r.makespan_s / serial, "groups": r.groups}
                  for mode, r in results.items()},
    }
    Path(args.out).write_text(json.dumps(record, indent=2))
    print(json.dumps(record["modes"], indent=2), json.dumps(record["per_reward_serial_s"], indent=2))


if __name__ == "__main__":
    main()
