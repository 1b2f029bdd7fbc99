"""`shapes.tiny_dit`: the shapes world's text-to-video model, a VideoPolicy of family `shapes`.

A pixel-space video DiT (identity codec: latents are the 3 RGB channels) built from the real
WanTransformer3DModel with a tiny config, conditioned by a frozen 1-layer UMT5 encoder over the world's
word-level vocabulary. It goes through exactly the Wan adapter (timestep scale, layout, LoRA,
checkpointing), so trainers treat it like Wan, and it saves to / loads from the same pipeline layout.

Why a frozen encoder rather than a learned embedding table: trainers cache prompt conditioning and
never train text encoders (real ones are frozen too), and the trainable Wan text projection learns what
it needs from fixed random features; the UMT5 layer mixes each attribute word with its neighbours."""
from __future__ import annotations

from pathlib import Path

import torch

from runtime.models.policy import VideoPolicy
from runtime.models.precision import cast_keeping_fp32
from runtime.models.wan import load_wan, text_dtype, wan_policy

from .world import VOCAB

# The spec of `shapes.tiny_dit` in stdlib/shapes.vpo (a test keeps the two equal). 8 frames of 16x16 px,
# 4x4 patches: 128 tokens per video.
TINY_DIT = {"family": "shapes", "dtype": "fp32", "prediction": "velocity", "shift": 1.0, "layers": 3,
            "hidden": 128, "heads": 4, "ffn": 256, "patch": [1, 4, 4], "vae_stride": [1, 1, 1],
            "latent_channels": 3, "text_dim": 32, "text_len": 8, "frames": 8, "resolution": [16, 16],
            "sample_steps": 8}
TEXT_LAYERS, TEXT_HEADS, FREQ_DIM = 1, 4, 32


def tokenizer(text_len: int):
    """Word-level over the world's vocabulary, no end-of-sequence token. A 9-word prompt cut to 8 tokens
    loses only its constant last word, `background`."""
    from runtime.models.text import word_tokenizer

    words = [w for w in VOCAB if w not in ("<pad>", "<unk>")]
    tok = word_tokenizer(words, eos=False)
    tok.model_max_length = text_len
    return tok


def components(spec: dict, seed: int) -> dict:
    """transformer, text_encoder and tokenizer with weights that depend only on (spec, seed)."""
    from diffusers import WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = UMT5EncoderModel(UMT5Config(
            vocab_size=len(VOCAB), d_model=spec["text_dim"], d_kv=spec["text_dim"] // TEXT_HEADS,
            d_ff=2 * spec["text_dim"], num_layers=TEXT_LAYERS, num_heads=TEXT_HEADS,
            relative_attention_num_buckets=8, dropout_rate=0.0))
        transformer = WanTransformer3DModel(
            patch_size=tuple(spec["patch"]), num_attention_heads=spec["heads"],
            attention_head_dim=spec["hidden"] // spec["heads"], in_channels=spec["latent_channels"],
            out_channels=spec["latent_channels"], text_dim=spec["text_dim"], freq_dim=FREQ_DIM,
            ffn_dim=spec["ffn"], num_layers=spec["layers"], cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=64)
    return {"transformer": transformer, "text_encoder": text_encoder.eval(), "tokenizer": tokenizer(spec["text_len"])}


def build(spec: dict, seed: int = 0, dtype: torch.dtype = torch.float32) -> VideoPolicy:
    """The model of a spec (the plan's, or TINY_DIT) with deterministic initial weights."""
    spec = {**TINY_DIT, **spec}
    parts = components(spec, seed)
    transformer = cast_keeping_fp32(parts["transformer"], dtype)
    return wan_policy(spec, transformer, parts["text_encoder"].to(text_dtype(dtype)), parts["tokenizer"], None, dtype)


def save_pretrained(folder: str | Path, spec: dict | None = None, seed: int = 0) -> Path:
    """Write the initial model in the pipeline layout (no vae/: pixel space)."""
    from runtime.models.layout import save_pipeline

    parts = components({**TINY_DIT, **(spec or {})}, seed)
    return save_pipeline(folder, "ShapesPipeline", parts)


def load(root: Path, spec: dict, dtype: torch.dtype) -> VideoPolicy:
    return load_wan(root, {**TINY_DIT, **spec}, dtype)
