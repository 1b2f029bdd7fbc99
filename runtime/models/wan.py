"""Wan 2.1 / 2.2 (WanTransformer3DModel, AutoencoderKLWan, UMT5EncoderModel).

Wan is a rectified-flow model in our convention already: latents (B, C, F, H, W), timestep = 1000 s
(FlowMatchEulerDiscreteScheduler's `sigmas * num_train_timesteps`), prediction = eps - x0. Wan 2.2
A14B splits denoising between two experts: `transformer` for timesteps >= boundary_ratio * 1000 and
`transformer_2` below; they are held together as one `ExpertPair` module."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .codecs import IdentityCodec, WanCodec
from .policy import TextCond, VideoPolicy
from .text import TextEncoder, load_tokenizer

NUM_TRAIN_TIMESTEPS = 1000
DEFAULT_TEXT_LEN = 512
DEFAULT_SHIFT = 3.0


def wan_denoise(model: nn.Module, latents: torch.Tensor, sigma: torch.Tensor, text: TextCond) -> torch.Tensor:
    return model(hidden_states=latents, timestep=sigma * NUM_TRAIN_TIMESTEPS,
                 encoder_hidden_states=text.embeds, return_dict=False)[0]


class ExpertPair(nn.Module):
    """Wan 2.2's high-noise and low-noise experts behind one transformer interface; each sample of a
    batch is routed by its own timestep. LoRA, checkpointing and adapter switches apply to both."""

    def __init__(self, high: nn.Module, low: nn.Module, boundary_ratio: float):
        super().__init__()
        self.high, self.low = high, low
        self.boundary = float(boundary_ratio) * NUM_TRAIN_TIMESTEPS

    @property
    def config(self):
        return self.high.config

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict: bool = False):
        use_high = timestep >= self.boundary
        if bool(use_high.all()) or bool((~use_high).all()):
            expert = self.high if bool(use_high[0]) else self.low
            return expert(hidden_states=hidden_states, timestep=timestep,
                          encoder_hidden_states=encoder_hidden_states, return_dict=False)
        out = torch.empty_like(hidden_states)
        for expert, rows in ((self.high, use_high), (self.low, ~use_high)):
            out[rows] = expert(hidden_states=hidden_states[rows], timestep=timestep[rows],
                               encoder_hidden_states=encoder_hidden_states[rows], return_dict=False)[0]
        return (out,)

    def _both(self, method: str, *args) -> None:
        for expert in (self.high, self.low):
            getattr(expert, method)(*args)

    def add_adapter(self, config) -> None:
        self._both("add_adapter", config)

    def disable_adapters(self) -> None:
        self._both("disable_adapters")

    def enable_adapters(self) -> None:
        self._both("enable_adapters")

    def fuse_lora(self) -> None:
        self._both("fuse_lora")

    def unload_lora(self) -> None:
        self._both("unload_lora")

    def enable_gradient_checkpointing(self) -> None:
        self._both("enable_gradient_checkpointing")

    def disable_gradient_checkpointing(self) -> None:
        self._both("disable_gradient_checkpointing")


def wan_policy(spec: dict, transformer: nn.Module, text_encoder: nn.Module, tokenizer, vae: nn.Module | None,
               dtype: torch.dtype) -> VideoPolicy:
    """Assemble a Wan-convention policy; `vae=None` makes it a pixel-space model (identity codec)."""
    codec = IdentityCodec() if vae is None else WanCodec(vae)
    config = transformer.config
    spec = {"prediction": "velocity", "shift": DEFAULT_SHIFT, **spec,
            "text_len": spec.get("text_len") or tokenizer_length(tokenizer, DEFAULT_TEXT_LEN),
            "latent_channels": config.in_channels, "patch": list(config.patch_size),
            "vae_stride": list(codec.stride)}
    if config.in_channels != codec.channels:
        raise ValueError(f"the transformer takes {config.in_channels} channels but the codec gives {codec.channels}")
    text = TextEncoder(tokenizer, text_encoder, spec["text_len"], mask_padding=True)
    return VideoPolicy(spec, transformer, text, codec, wan_denoise, "velocity", dtype)


def load_wan(root: Path, spec: dict, dtype: torch.dtype) -> VideoPolicy:
    """A local WanPipeline folder: transformer/ (+ transformer_2/ for 2.2 A14B), vae/, text_encoder/,
    tokenizer/, scheduler/ and model_index.json."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5EncoderModel

    index = json.loads((root / "model_index.json").read_text()) if (root / "model_index.json").is_file() else {}
    # torch_dtype at load keeps the modules diffusers names (norms, time embedding, rope) in fp32
    transformer = WanTransformer3DModel.from_pretrained(root / "transformer", torch_dtype=dtype)
    if (root / "transformer_2").is_dir():
        low = WanTransformer3DModel.from_pretrained(root / "transformer_2", torch_dtype=dtype)
        if index.get("boundary_ratio") is None:
            raise ValueError(f"{root} has transformer_2 but model_index.json sets no boundary_ratio")
        transformer = ExpertPair(transformer, low, index["boundary_ratio"])
    vae = AutoencoderKLWan.from_pretrained(root / "vae", torch_dtype=torch.float32) if (root / "vae").is_dir() else None
    text_model = UMT5EncoderModel.from_pretrained(root / "text_encoder", torch_dtype=text_dtype(dtype))
    spec = {"shift": scheduler_shift(root, DEFAULT_SHIFT), **spec}
    return wan_policy(spec, transformer, text_model, load_tokenizer(root / "tokenizer"), vae, dtype)


def tokenizer_length(tokenizer, default: int) -> int:
    """The tokenizer's own `model_max_length` when it sets a real one (transformers uses ~1e30 for none)."""
    length = getattr(tokenizer, "model_max_length", None)
    return int(length) if length and length < 1_000_000 else default


def text_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype == torch.float16 else dtype  # T5 overflows in fp16


def scheduler_shift(root: Path, default: float) -> float:
    """The flow shift the folder's scheduler was configured with (`shift` or UniPC's `flow_shift`)."""
    path = root / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        return default
    cfg = json.loads(path.read_text())
    return float(cfg.get("flow_shift") or cfg.get("shift") or default)
