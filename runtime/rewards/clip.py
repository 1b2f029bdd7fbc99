"""CLIP text-video score and the aesthetic predictor, on a transformers CLIPModel from a local folder.

Folder layout: what `CLIPModel.save_pretrained` and a tokenizer's `save_pretrained` write (config.json,
model.safetensors, tokenizer files), optionally `preprocessor_config.json` (resize / crop / mean / std;
OpenAI's statistics and the model's image size otherwise). The aesthetic predictor also needs
`aesthetic_head.safetensors` beside the CLIP weights: a linear layer (`weight` (1, D), `bias` (1,))
applied to L2-normalised image embeddings, as LAION's linear aesthetic predictor is; or, named by the
reward's `head`, LAION's improved predictor (an MLP, its released .pth, see aesthetic_mlp.py).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from runtime.errors import JobError

from .base import DeviceNeeds, Reward
from .loading import from_local
from .pixels import (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, normalize, read_processor_config, resize_center_crop,
                     sample_frames, square_side, to_unit)

AESTHETIC_HEAD = "aesthetic_head.safetensors"


def _embedding(out) -> torch.Tensor:
    """transformers 4 returns the projected embedding; 5 returns an output whose pooler_output it is."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ClipEncoder:
    """Normalised CLIP embeddings of frames and prompts."""

    def __init__(self, path: Path, weights: str | None = None):
        from transformers import AutoTokenizer, CLIPModel

        if weights is None:
            self.model = from_local(CLIPModel, path).eval().requires_grad_(False)
        else:  # open_clip weights (HPSv2) into the model `path`'s config.json describes
            from transformers import CLIPConfig

            from .open_clip_layout import load_into

            self.model = CLIPModel(from_local(CLIPConfig, path))
            file = Path(weights) if Path(weights).is_absolute() else Path(path) / weights
            if not file.is_file():
                raise JobError(f"CLIP reward: `checkpoint` {weights} is not a file (looked at {file})")
            load_into(self.model, file)
            self.model.eval().requires_grad_(False)
        self.tokenizer = from_local(AutoTokenizer, path)
        proc = read_processor_config(path, "preprocessor_config.json")
        self.crop = square_side(proc.get("crop_size"), self.model.config.vision_config.image_size)
        self.side = square_side(proc.get("size"), self.crop)
        self.mean = tuple(proc.get("image_mean", OPENAI_CLIP_MEAN))
        self.std = tuple(proc.get("image_std", OPENAI_CLIP_STD))
        self.max_tokens = self.model.config.text_config.max_position_embeddings

    @property
    def memory_gib(self) -> float:
        return sum(p.numel() * p.element_size() for p in self.model.parameters()) / 2**30

    def to(self, device: torch.device) -> None:
        self.model.to(device)

    def image_embeds(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, D), unit norm."""
        x = normalize(resize_center_crop(to_unit(frames), self.side, self.crop), self.mean, self.std)
        return F.normalize(_embedding(self.model.get_image_features(pixel_values=x)).float(), dim=-1)

    def text_embeds(self, prompts: list[str]) -> torch.Tensor:
        """(B, D), unit norm; prompts longer than the text model's context are truncated."""
        device = next(self.model.parameters()).device
        tok = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt").to(device)
        out = self.model.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])
        return F.normalize(_embedding(out).float(), dim=-1)


def _frames(videos: torch.Tensor, wanted: int) -> tuple[torch.Tensor, int]:
    """(B, F, 3, H, W) -> (B * n, 3, H, W) of n evenly spaced frames per video, and n."""
    picked = sample_frames(videos, wanted)
    return picked.flatten(0, 1), picked.shape[1]


class ClipScoreReward(Reward):
    """Mean cosine similarity between the prompt's and each sampled frame's CLIP embeddings, in [-1, 1];
    with `logit_scale`, times the model's exp(logit_scale) (PickScore's scale, 100 for PickScore_v1)."""

    def __init__(self, encoder: ClipEncoder, frames: int = 8, logit_scale: bool = False):
        self.encoder, self.frames, self.logit_scale = encoder, frames, logit_scale
        self.bounded = not logit_scale
        self.name, self.heads = "clip_score", ("clip_score",)
        self.needs = DeviceNeeds(device="gpu", memory_gib=round(encoder.memory_gib + 0.5, 3), max_batch=16)

    def _move(self, device: torch.device) -> None:
        self.encoder.to(device)

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        frames, n = _frames(videos, self.frames)
        image = self.encoder.image_embeds(frames).view(len(prompts), n, -1)
        text = self.encoder.text_embeds(prompts)
        cosine = (image * text[:, None]).sum(-1).mean(1)
        if self.logit_scale:  # PickScore's reported score: exp(logit_scale) * cosine
            cosine = cosine * self.encoder.model.logit_scale.exp().float()
        return {self.name: cosine}


class AestheticReward(Reward):
    """LAION-style aesthetic score: a linear head on normalised CLIP image embeddings, averaged over frames."""

    def __init__(self, encoder: ClipEncoder, head: torch.nn.Module, frames: int = 8):
        self.encoder, self.head, self.frames = encoder, head.eval().requires_grad_(False), frames
        self.name, self.heads = "aesthetic", ("aesthetic",)
        self.needs = DeviceNeeds(device="gpu", memory_gib=round(encoder.memory_gib + 0.5, 3), max_batch=16)

    def _move(self, device: torch.device) -> None:
        self.encoder.to(device)
        self.head.to(device)

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        frames, n = _frames(videos, self.frames)
        per_frame = self.head(self.encoder.image_embeds(frames)).view(len(prompts), n)
        return {self.name: per_frame.mean(1)}


def load_aesthetic_head(folder: Path, dim: int, head: str | None = None) -> torch.nn.Module:
    """The predictor beside the CLIP weights (or at `head`, a file name in the CLIP folder or an absolute
    path): a linear head (`weight` (1, D), `bias` (1,)) or LAION's released MLP (aesthetic_mlp.py)."""
    from .aesthetic_mlp import is_mlp_state, mlp_from_state, read_state

    path = Path(folder) / (head or AESTHETIC_HEAD)
    if not path.is_file():
        raise JobError(f"aesthetic predictor: {path} is missing; save the linear head (`weight` (1, {dim}), "
                       f"`bias` (1,)) as {AESTHETIC_HEAD} in the CLIP folder, or set `head` to LAION's "
                       "predictor file (e.g. sac+logos+ava1-l14-linearMSE.pth)")
    state = read_state(path)
    if is_mlp_state(state):
        mlp = mlp_from_state(state, path)
        if mlp[0].in_features != dim:
            raise JobError(f"aesthetic predictor: {path} takes {mlp[0].in_features}-d embeddings; this CLIP model "
                           f"gives {dim}-d ones (LAION's predictor is for CLIP ViT-L/14, 768-d)")
        return mlp
    if set(state) != {"weight", "bias"} or tuple(state["weight"].shape) != (1, dim):
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        raise JobError(f"aesthetic predictor: {path} holds {shapes}; expected a linear head with `weight` "
                       f"(1, {dim}) and `bias` (1,) for this CLIP model, or LAION's MLP (`layers.N.weight`)")
    linear = torch.nn.Linear(dim, 1)
    linear.load_state_dict(state)
    return linear


def load_clip_score(path: Path, frames: int, logit_scale: bool = False, weights: str | None = None) -> ClipScoreReward:
    return ClipScoreReward(ClipEncoder(path, weights), frames, logit_scale)


def load_aesthetic(path: Path, frames: int, head: str | None = None) -> AestheticReward:
    encoder = ClipEncoder(path)
    return AestheticReward(encoder, load_aesthetic_head(path, encoder.model.config.projection_dim, head), frames)
