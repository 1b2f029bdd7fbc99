"""FLOPs of one video through each network: the diffusion transformer, its VAE and text encoder, and
the scorers (VLM judges, reward models, vision backbones).

Matmul FLOPs only (2 per multiply-add), as torch.utils.flop_counter counts them: for Wan2.1-1.3B at
480x832x33 the transformer forward gives the measured 72.9 TFLOP and fwd+bwd the measured 237.6 TFLOP
(tests/estimate/test_flops.py)."""
from __future__ import annotations

from dataclasses import dataclass

from .arch import Clip, VideoDiT, VisionLanguage
from .calibration import (ATTENTION_BACKWARD_RATIO, LINEAR_BACKWARD_RATIO, VAE_DECODE_FIRST, VAE_DECODE_REST,
                          VAE_ENCODE_FIRST, VAE_ENCODE_REST, WAN_VAE_PARAMS)


@dataclass(frozen=True)
class PassFlops:
    """A forward pass split into linear layers and attention, whose backward costs differ."""

    linear: float
    attention: float

    @property
    def forward(self) -> float:
        return self.linear + self.attention

    @property
    def backward(self) -> float:
        return LINEAR_BACKWARD_RATIO * self.linear + ATTENTION_BACKWARD_RATIO * self.attention

    def training(self, checkpointing: bool = False) -> float:
        """fwd + bwd, plus the forward recomputed block by block under activation checkpointing."""
        return self.forward * (2 if checkpointing else 1) + self.backward


def latent_frames(arch: VideoDiT, frames: int) -> int:
    """Causal video VAEs keep the first frame and compress the rest: 1 + (F - 1) / t_stride."""
    stride = arch.vae_stride[0]
    return frames if stride == 1 else 1 + (frames - 1) // stride


def token_grid(arch: VideoDiT, clip: Clip) -> tuple[int, int, int]:
    """(t, h, w) transformer tokens of a clip: latent cells grouped by the patch size."""
    _, sh, sw = arch.vae_stride
    pt, ph, pw = arch.patch
    return (max(1, latent_frames(arch, clip.frames) // pt), max(1, clip.height // sh // ph),
            max(1, clip.width // sw // pw))


def tokens_per_video(arch: VideoDiT, clip: Clip) -> int:
    t, h, w = token_grid(arch, clip)
    return t * h * w


def latent_elements(arch: VideoDiT, clip: Clip) -> int:
    """Numbers in one video's latent (channels x frames x height x width)."""
    _, sh, sw = arch.vae_stride
    return arch.latent_channels * latent_frames(arch, clip.frames) * (clip.height // sh) * (clip.width // sw)


def transformer_pass(arch: VideoDiT, tokens: int) -> PassFlops:
    """One video through the DiT: per block, self-attention q,k,v,o and cross-attention q,o on the video
    tokens, cross-attention k,v on the text tokens, the MLP; attention scores and values against the
    video tokens (4 N^2 d) and against the text (4 N L d). Embeddings and the output head are below 0.1%."""
    h, n, text = arch.hidden, tokens, arch.text_len
    per_token = 6 * h * h + 2 * h * arch.ffn
    linear = 2 * arch.layers * (per_token * n + 2 * h * h * text)
    attention = 4 * arch.layers * n * h * (n + text)
    return PassFlops(float(linear), float(attention))


def _vae_flops(arch: VideoDiT, clip: Clip, first: float, rest: float) -> float:
    if arch.vae_params == 0:  # pixel-space model: no VAE
        return 0.0
    per_pixel_column = first + (clip.frames - 1) * rest
    # Other VAEs are scaled by size from the measured Wan2.1 VAE (an assumption; see README).
    return per_pixel_column * clip.height * clip.width * arch.vae_params / WAN_VAE_PARAMS


def vae_encode_flops(arch: VideoDiT, clip: Clip) -> float:
    return _vae_flops(arch, clip, VAE_ENCODE_FIRST, VAE_ENCODE_REST)


def vae_decode_flops(arch: VideoDiT, clip: Clip) -> float:
    return _vae_flops(arch, clip, VAE_DECODE_FIRST, VAE_DECODE_REST)


def text_encoder_flops(arch: VideoDiT) -> float:
    """One prompt through the frozen text encoder, padded to text_len (embedding tables counted too: high)."""
    return 2.0 * arch.text_encoder_params * arch.text_len


def scorer_pass(model: VisionLanguage, frames: int) -> PassFlops:
    """One video (`frames` frames plus the prompt) through a VLM or vision backbone."""
    n = model.tokens(frames)
    return PassFlops(linear=2.0 * model.params * n, attention=4.0 * model.layers * n * n * model.hidden)
