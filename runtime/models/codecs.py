"""Between pixels (B, F, 3, H, W) in [-1, 1] and canonical latents (B, C, F', H', W').

Every codec is frozen and deterministic: encoding takes the VAE posterior's mode (not a sample), so
cached latents are reproducible. `stride` is the (t, h, w) compression; frames map as 1 + (F - 1) / t."""
from __future__ import annotations

import torch
from torch import nn

from vpolang.schema.families import VIDEO_FAMILIES


class IdentityCodec(nn.Module):
    """Pixel-space models (the shapes world): latents are the pixels, channel-first."""

    stride = (1, 1, 1)
    channels = 3
    odd_latent_frames = False

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.permute(0, 2, 1, 3, 4).float()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents.permute(0, 2, 1, 3, 4).float()


class WanCodec(nn.Module):
    """AutoencoderKLWan with the Wan pipeline's per-channel latent normalisation (z - mean) / std."""

    odd_latent_frames = False

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae.requires_grad_(False).eval()
        cfg = vae.config
        self.register_buffer("mean", torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1),
                             persistent=False)
        self.stride = (cfg.scale_factor_temporal, cfg.scale_factor_spatial, cfg.scale_factor_spatial)
        self.channels = cfg.z_dim

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 2, 1, 3, 4).to(self.vae.dtype)
        z = self.vae.encode(x).latent_dist.mode().float()
        return (z - self.mean) / self.std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents.float() * self.std + self.mean
        return self.vae.decode(z.to(self.vae.dtype), return_dict=False)[0].float().permute(0, 2, 1, 3, 4)


class CogVideoXCodec(nn.Module):
    """AutoencoderKLCogVideoX with the pipeline's `scaling_factor`. Its latents come out channel-first
    like Wan's; the CogVideoX denoiser adapter permutes to the transformer's frame-first layout.
    Its decoder restores 1 + 4 (F' - 1) frames only for an odd number F' of latent frames (13 for the
    usual 49), so `latent_shape` asks for frames = 1 + 8k."""

    odd_latent_frames = VIDEO_FAMILIES["cogvideox"].odd_latent_frames

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae.requires_grad_(False).eval()
        cfg = vae.config
        self.scale = float(cfg.scaling_factor)
        spatial = 2 ** (len(cfg.block_out_channels) - 1)
        self.stride = (int(cfg.temporal_compression_ratio), spatial, spatial)
        self.channels = cfg.latent_channels

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 2, 1, 3, 4).to(self.vae.dtype)
        return self.vae.encode(x).latent_dist.mode().float() * self.scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = (latents.float() / self.scale).to(self.vae.dtype)
        return self.vae.decode(z, return_dict=False)[0].float().permute(0, 2, 1, 3, 4)
