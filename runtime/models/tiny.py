"""Tiny models of each family built from configs (no download), saved in the diffusers pipeline layout
so tests and benchmarks load them back through the real loading code; and the full Wan2.1-1.3B
transformer architecture with random weights for GPU benchmarks."""
from __future__ import annotations

from pathlib import Path

import torch

from .layout import save_pipeline
from .precision import cast_keeping_fp32
from .text import word_tokenizer

WORDS = ("a", "an", "the", "cat", "dog", "bird", "car", "red", "green", "blue", "yellow", "black", "white",
         "running", "flying", "moving", "walking", "on", "in", "over", "under", "beach", "street", "sky",
         "city", "forest", "night", "day", "slowly", "quickly", "left", "right", "up", "down", "and", ".", ",")
TEXT_DIM = 32
WAN_TEXT_LEN, COG_TEXT_LEN = 16, 12
WAN22_BOUNDARY = 0.875  # Wan2.2-T2V-A14B's switch from the high-noise to the low-noise expert


def tiny_tokenizer(length: int):
    tok = word_tokenizer(WORDS, eos=True)
    tok.model_max_length = length
    return tok


def tiny_t5(vocab_size: int, umt5: bool):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    return model_cls(config_cls(vocab_size=vocab_size, d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2,
                                num_heads=4, relative_attention_num_buckets=8, dropout_rate=0.0)).eval()


def tiny_wan_transformer(**overrides):
    from diffusers import WanTransformer3DModel

    config = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16,
                  out_channels=16, text_dim=TEXT_DIM, freq_dim=32, ffn_dim=64, num_layers=2, cross_attn_norm=True,
                  qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    return WanTransformer3DModel(**{**config, **overrides})


def tiny_wan_vae():
    """AutoencoderKLWan, 8x spatial and 4x temporal compression, 16 latent channels."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def save_tiny_wan(folder: str | Path, seed: int = 0, experts: int = 1) -> Path:
    """A tiny WanPipeline folder; `experts=2` adds Wan 2.2's low-noise `transformer_2` and boundary."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tok = tiny_tokenizer(WAN_TEXT_LEN)
        parts = {"transformer": tiny_wan_transformer(), "vae": tiny_wan_vae(), "text_encoder": tiny_t5(len(tok), True),
                 "tokenizer": tok, "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0)}
        parts["transformer_2"] = tiny_wan_transformer() if experts == 2 else None
    boundary = WAN22_BOUNDARY if experts == 2 else None
    return save_pipeline(folder, "WanPipeline", parts, boundary_ratio=boundary, expand_timesteps=False)


def tiny_cogvideox_transformer(rotary: bool = False):
    from diffusers import CogVideoXTransformer3DModel

    return CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=16, out_channels=16, time_embed_dim=32,
        text_embed_dim=TEXT_DIM, num_layers=2, sample_width=16, sample_height=16, sample_frames=17, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=COG_TEXT_LEN, use_rotary_positional_embeddings=rotary)


def cogvideox_scheduler():
    """CogVideoX-2b's training schedule (v-prediction, SNR shift 3, zero terminal SNR)."""
    from diffusers import CogVideoXDDIMScheduler

    return CogVideoXDDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  clip_sample=False, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                                  set_alpha_to_one=True, snr_shift_scale=3.0, timestep_spacing="trailing")


def save_tiny_cogvideox(folder: str | Path, seed: int = 0, rotary: bool = False) -> Path:
    from diffusers import AutoencoderKLCogVideoX

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tok = tiny_tokenizer(COG_TEXT_LEN)
        vae = AutoencoderKLCogVideoX(block_out_channels=(8, 8, 8, 8), latent_channels=16, layers_per_block=1,
                                     norm_num_groups=2, temporal_compression_ratio=4)
        parts = {"transformer": tiny_cogvideox_transformer(rotary), "vae": vae,
                 "text_encoder": tiny_t5(len(tok), False), "tokenizer": tok, "scheduler": cogvideox_scheduler()}
    return save_pipeline(folder, "CogVideoXPipeline", parts)


def wan21_1_3b_config() -> dict:
    """The transformer config of Wan2.1-T2V-1.3B (diffusers' WanTransformer3DModel)."""
    return dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)


def wan21_1_3b_transformer(dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cuda", seed: int = 0):
    """The full 1.3B architecture with random weights, built directly on `device` (1.4B parameters: do
    not build it in CPU tests), cast like `from_pretrained(torch_dtype=dtype)` would."""
    from diffusers import WanTransformer3DModel

    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        model = WanTransformer3DModel(**wan21_1_3b_config())
    return cast_keeping_fp32(model, dtype)
