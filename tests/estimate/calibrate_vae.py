"""Count the Wan2.1 VAE's FLOPs per pixel (the VAE_* constants of vpolang/estimate/calibration.py).

Builds diffusers' AutoencoderKLWan from its default config (the Wan2.1 VAE, random weights; nothing is
downloaded) and counts encode and decode FLOPs with torch's FlopCounterMode at 1 + 4k frames. Linear in
the frames after the first, and the same per pixel at any resolution:

    python -m tests.estimate.calibrate_vae            # 64x64 at 5 and 9 frames (about 1.5 min on 2 cores)
"""
from __future__ import annotations

import argparse


def count(height: int, width: int, frames: int) -> tuple[float, float]:
    """(encode, decode) FLOPs of one clip."""
    import torch
    from diffusers import AutoencoderKLWan
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    vae = AutoencoderKLWan().eval()
    clip = torch.randn(1, 3, frames, height, width)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            latent = vae.encode(clip).latent_dist.mode()
        encode = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            vae.decode(latent)
        decode = counter.get_total_flops()
    return float(encode), float(decode)


def per_pixel(height: int, width: int, frames: tuple[int, int]) -> dict[str, float]:
    """FLOPs per pixel of the first frame and of each further frame, from two clip lengths."""
    (f1, f2), pixels = frames, height * width
    (e1, d1), (e2, d2) = count(height, width, f1), count(height, width, f2)
    out = {}
    for name, a, b in (("encode", e1, e2), ("decode", d1, d2)):
        rest = (b - a) / (f2 - f1) / pixels
        out[f"{name}_rest"] = rest
        out[f"{name}_first"] = a / pixels - (f1 - 1) * rest
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, nargs=2, default=(5, 9))
    args = parser.parse_args()
    for key, value in per_pixel(args.size, args.size, tuple(args.frames)).items():
        print(f"{key}: {value / 1e6:.3f}e6 FLOPs per pixel")
