"""The shapes the estimates need: a video diffusion transformer, a (vision-)language scorer, a clip.

Built from the model catalogue's fields (stdlib/models.vpo, as lowered into a plan's job config) with
`from_spec`, or directly in tests."""
from __future__ import annotations

from dataclasses import dataclass

from .calibration import JUDGE_PROMPT_TOKENS

# Height x width of the named resolutions; the compiler's table (vpolang/schema/base.py) is the same.
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "240p": (240, 416), "360p": (360, 640), "480p": (480, 832), "540p": (544, 960),
    "720p": (720, 1280), "1080p": (1088, 1920),
}
_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class VideoDiT:
    """A text-to-video diffusion transformer with its frozen VAE and text encoder."""

    params: int
    layers: int
    hidden: int
    heads: int
    ffn: int
    patch: tuple[int, int, int]  # (t, h, w) latent cells per token
    vae_stride: tuple[int, int, int]  # (t, h, w) pixels per latent cell; (1, 1, 1) in pixel space
    latent_channels: int
    text_len: int  # text tokens the video attends to
    text_dim: int
    text_encoder_params: int = 0
    vae_params: int = 0
    prediction: str = "velocity"  # or epsilon
    weight_bytes: int = 2
    sample_steps: int = 50

    @classmethod
    def from_spec(cls, spec) -> VideoDiT:
        """From a video_diffusion spec (typed, or its dict: validated, so defaults are the schema's)."""
        from ..schema import entities as schema  # pydantic, only when a spec is read (importing stays light)

        s = spec if isinstance(spec, schema.VideoDiffusion) else schema.VideoDiffusion.model_validate(dict(spec))
        return cls(params=s.params, layers=s.layers, hidden=s.hidden, heads=s.heads, ffn=s.ffn, patch=tuple(s.patch),
                   vae_stride=tuple(s.vae_stride), latent_channels=s.latent_channels, text_len=s.text_len,
                   text_dim=s.text_dim, text_encoder_params=s.text_encoder_params, vae_params=s.vae_params,
                   prediction=s.prediction, weight_bytes=_BYTES[s.dtype], sample_steps=s.sample_steps)

    @property
    def lora_targets_per_layer(self) -> int:
        """Square hidden x hidden projections LoRA adapts per block: q, k, v, o of self- and cross-attention."""
        return 8


@dataclass(frozen=True)
class VisionLanguage:
    """A transformer that reads video frames as tokens: a VLM judge, a reward model, CLIP, DINOv2."""

    params: int
    layers: int
    hidden: int
    tokens_per_frame: int = 64
    prompt_tokens: int = JUDGE_PROMPT_TOKENS  # question/prompt text read beside the frames
    weight_bytes: int = 2

    @classmethod
    def from_spec(cls, spec) -> VisionLanguage:
        """From a vision_language spec (typed, or its dict: validated, so defaults are the schema's)."""
        from ..schema import entities as schema

        s = spec if isinstance(spec, schema.VisionLanguage) else schema.VisionLanguage.model_validate(dict(spec))
        return cls(params=s.params, layers=s.layers, hidden=s.hidden, tokens_per_frame=s.tokens_per_frame,
                   weight_bytes=_BYTES[s.dtype])

    def tokens(self, frames: int) -> int:
        return frames * self.tokens_per_frame + self.prompt_tokens


# Vision backbones of the stdlib rewards (vision towers only; 224 px frames, 14 px patches + CLS token).
CLIP_VIT_L14 = VisionLanguage(params=304_000_000, layers=24, hidden=1024, tokens_per_frame=257, prompt_tokens=0)
DINOV2_SMALL = VisionLanguage(params=22_000_000, layers=12, hidden=384, tokens_per_frame=257, prompt_tokens=0)
DINOV2_BASE = VisionLanguage(params=86_000_000, layers=12, hidden=768, tokens_per_frame=257, prompt_tokens=0)
VISION_BACKBONES = {"dinov2-small": DINOV2_SMALL, "dinov2-base": DINOV2_BASE, "clip-vit-l14": CLIP_VIT_L14}


def resolution(value: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """(height, width) of "480p" (case-insensitive) or of an explicit pair."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key not in RESOLUTIONS:
            raise ValueError(f"unknown resolution `{value}`; known: {', '.join(RESOLUTIONS)}")
        return RESOLUTIONS[key]
    height, width = value
    if height <= 0 or width <= 0:
        raise ValueError(f"a resolution needs a positive height and width, got {height}x{width}")
    return int(height), int(width)


@dataclass(frozen=True)
class Clip:
    """One training or sampled video: frames x height x width pixels."""

    frames: int
    height: int
    width: int

    @classmethod
    def of(cls, frames: int, res: str | tuple[int, int] | list[int]) -> Clip:
        if frames < 1:
            raise ValueError(f"a clip needs at least one frame, got {frames}")
        return cls(frames, *resolution(res))

    @property
    def pixels(self) -> int:
        return self.frames * self.height * self.width
