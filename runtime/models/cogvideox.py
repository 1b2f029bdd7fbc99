"""CogVideoX (CogVideoXTransformer3DModel, AutoencoderKLCogVideoX, T5EncoderModel).

CogVideoX is a DDPM-family model: it was trained on a discrete variance-preserving schedule (the
scheduler's `alphas_cumprod`, with its SNR shift and zero-terminal-SNR rescaling) to predict
v_vp = alpha eps - sigma x0, on frame-first latents (B, F, C, H, W). The adapter lets it run under
our flow sampler: for a flow level s it feeds x_t = x_s / sqrt((1-s)^2 + s^2) at the fractional
timestep t whose alphas_cumprod matches s's signal-to-noise ratio, permutes to frame-first and back,
and converts the v-prediction to the flow velocity eps - x0 (parameterization.py). The policy's
`prediction` is `epsilon` (what DPO on this family uses, per the model catalogue)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .codecs import CogVideoXCodec
from .parameterization import flow_velocity_from_vp, vp_coefficients, vp_timestep
from .policy import TextCond, VideoPolicy
from .text import TextEncoder, load_tokenizer
from .wan import text_dtype


class CogVideoXDenoise:
    """The flow-convention call of a CogVideoX transformer (see the module docstring)."""

    def __init__(self, alphas_cumprod: torch.Tensor):
        self.alphas_cumprod = alphas_cumprod.float()

    def __call__(self, model: nn.Module, latents: torch.Tensor, sigma: torch.Tensor, text: TextCond) -> torch.Tensor:
        view = (-1, 1, 1, 1, 1)
        alpha, noise, scale = (c.to(latents.device).view(view) for c in vp_coefficients(sigma))
        x_t = latents.float() * scale
        timestep = vp_timestep(self.alphas_cumprod, sigma).to(latents.device)
        _, _, frames, height, width = latents.shape
        rotary = rotary_embedding(model.config, frames, height, width, latents.device)
        out = model(hidden_states=x_t.to(latents.dtype).permute(0, 2, 1, 3, 4), encoder_hidden_states=text.embeds,
                    timestep=timestep, image_rotary_emb=rotary, return_dict=False)[0]
        return flow_velocity_from_vp(x_t, out.float().permute(0, 2, 1, 3, 4), alpha, noise)


def rotary_embedding(config, frames: int, height: int, width: int, device) -> tuple | None:
    """The 3D RoPE tables the CogVideoX pipeline builds for a latent grid (None without RoPE)."""
    if not config.use_rotary_positional_embeddings:
        return None
    from diffusers.models.embeddings import get_3d_rotary_pos_embed
    from diffusers.pipelines.cogvideo.pipeline_cogvideox import get_resize_crop_region_for_grid

    p, p_t = config.patch_size, config.patch_size_t
    grid = (height // p, width // p)
    base_w, base_h = config.sample_width // p, config.sample_height // p
    if p_t is None:  # CogVideoX 1.0
        crops = get_resize_crop_region_for_grid(grid, base_w, base_h)
        return get_3d_rotary_pos_embed(embed_dim=config.attention_head_dim, crops_coords=crops, grid_size=grid,
                                       temporal_size=frames, device=device)
    if frames % p_t:  # CogVideoX 1.5 patches frames in pairs
        raise ValueError(f"CogVideoX 1.5 needs a multiple of {p_t} latent frames, got {frames}")
    return get_3d_rotary_pos_embed(embed_dim=config.attention_head_dim, crops_coords=None, grid_size=grid,
                                   temporal_size=frames // p_t, grid_type="slice", max_size=(base_h, base_w),
                                   device=device)


def cogvideox_policy(spec: dict, transformer: nn.Module, text_encoder: nn.Module, tokenizer, vae: nn.Module,
                     alphas_cumprod: torch.Tensor, dtype: torch.dtype) -> VideoPolicy:
    config = transformer.config
    codec = CogVideoXCodec(vae)
    patch_t = config.patch_size_t or 1
    # the transformer's positional table covers exactly max_text_seq_length text tokens
    spec = {"prediction": "epsilon", "shift": 1.0, **spec, "text_len": config.max_text_seq_length,
            "latent_channels": config.in_channels, "patch": [patch_t, config.patch_size, config.patch_size],
            "vae_stride": list(codec.stride)}
    text = TextEncoder(tokenizer, text_encoder, config.max_text_seq_length, mask_padding=False)
    return VideoPolicy(spec, transformer, text, codec, CogVideoXDenoise(alphas_cumprod), "epsilon", dtype)


def load_cogvideox(root: Path, spec: dict, dtype: torch.dtype) -> VideoPolicy:
    """A local CogVideoXPipeline folder: transformer/, vae/, text_encoder/, tokenizer/, scheduler/."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel
    from transformers import T5EncoderModel

    transformer = CogVideoXTransformer3DModel.from_pretrained(root / "transformer", torch_dtype=dtype)
    vae = AutoencoderKLCogVideoX.from_pretrained(root / "vae", torch_dtype=torch.float32)
    text_model = T5EncoderModel.from_pretrained(root / "text_encoder", torch_dtype=text_dtype(dtype))
    # the DDIM and DPM schedulers share the training schedule; DDIM's class reads either config
    scheduler = CogVideoXDDIMScheduler.from_pretrained(root / "scheduler")
    if scheduler.config.prediction_type != "v_prediction":
        raise ValueError(f"{root}: expected a v-prediction scheduler, found {scheduler.config.prediction_type!r}")
    return cogvideox_policy(spec, transformer, text_model, load_tokenizer(root / "tokenizer"), vae,
                            scheduler.alphas_cumprod, dtype)
