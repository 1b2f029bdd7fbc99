"""FLOPs and activation memory of a video diffusion transformer, from its catalogue sizes.

Checked against a measurement: Wan2.1-1.3B at 480x832x33 (14,040 tokens) counts 72.9 TFLOP per forward
with torch.utils.flop_counter; `forward_flops` gives 72.9 (tests/estimate)."""
from __future__ import annotations

BWD_FACTOR = 3.26  # fwd+bwd / fwd FLOPs, measured on Wan2.1-1.3B (237.6 / 72.9)
# Activation bytes per video token, measured: 47.7 GiB peak of a bf16 fwd+bwd at 14,040 tokens minus
# weights and gradients (2 x 2.6 GiB) -> 42.5 GiB / 14,040 tokens; with activation checkpointing the
# same step peaked at 7.07 GiB (bench/results/gpu_wan_step_33f.json). Scaled by layers x width.
ACT_BYTES_PER_TOKEN_LAYER_WIDTH = 42.5 * 2**30 / 14040 / (30 * 1536)
CKPT_ACT_FRACTION = (7.07 - 5.2) / 42.5


def latent_grid(spec: dict, frames: int, resolution: list[int]) -> tuple[int, int, int]:
    st, sh, sw = spec["vae_stride"]
    pt, ph, pw = spec["patch"]
    lat_f = 1 + (frames - 1) // st if st > 1 else frames
    return max(1, lat_f // pt), max(1, resolution[0] // sh // ph), max(1, resolution[1] // sw // pw)


def tokens(spec: dict, frames: int, resolution: list[int]) -> int:
    f, h, w = latent_grid(spec, frames, resolution)
    return f * h * w


def forward_flops(spec: dict, n_tokens: int) -> float:
    """Per video: projections and MLP on video tokens, self-attention, cross-attention to the text."""
    h, layers, text = spec["hidden"], spec["layers"], spec["text_len"]
    per_token_linear = layers * (6 * h * h + 2 * h * spec["ffn"])  # q,k,v,o + cross q,o + MLP
    linear = 2 * per_token_linear * n_tokens + 2 * layers * 2 * h * h * text  # + cross k,v on text tokens
    attention = 4 * layers * n_tokens * n_tokens * h
    cross = 4 * layers * n_tokens * text * h
    return float(linear + attention + cross)


def activation_bytes(spec: dict, n_tokens: int, checkpointing: bool) -> float:
    full = ACT_BYTES_PER_TOKEN_LAYER_WIDTH * n_tokens * spec["layers"] * spec["hidden"]
    return full * (CKPT_ACT_FRACTION if checkpointing else 1.0)


def vlm_flops(spec: dict, frames: int, text_tokens: int = 64) -> float:
    """A judge/critic forward over `frames` frames: 2 x params x tokens."""
    return 2.0 * spec["params"] * (frames * spec.get("tokens_per_frame", 64) + text_tokens)
