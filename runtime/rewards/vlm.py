"""Vision-language models fed with videos, for judges and reward models: the Qwen2-VL family (Qwen2-VL,
Qwen2.5-VL) and the LLaVA layout (LLaVA, VILA: `LlavaVideoModel` below). `load_vlm(folder)` picks the
adapter from the folder's config.json; both take texts with `VIDEO` where each video goes.

Video pixels are prepared here in torch rather than by the transformers video processor: that keeps
gradients flowing to the videos (reward guidance, reward-model training on generated clips) and needs
no torchvision. The layout is the processor's: frames resized to multiples of patch * merge within a
pixel budget, normalised, padded to a multiple of the temporal patch, and cut into
(grid_t * grid_h * grid_w, 3 * temporal * patch * patch) rows in merge-window order. Prompts use the
Qwen chat format, with one `<|video_pad|>` per merged visual token.
"""
from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from runtime.errors import JobError
from vpolang.schema.families import VISION_LANGUAGE_ADAPTERS

from .loading import from_local
from .pixels import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, normalize, read_processor_config, to_unit

VLM_FAMILIES = VISION_LANGUAGE_ADAPTERS  # the compiler's table: its preflight warns about any other family
QWEN_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")
LLAVA_MODEL_TYPES = ("llava",)
VIDEO_MIN_PIXELS = 128 * 28 * 28  # qwen-vl-utils' per-frame bounds for videos
VIDEO_MAX_PIXELS = 768 * 28 * 28
VIDEO_PAD = "<|video_pad|>"
VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"
SYSTEM = "You are a helpful assistant."


def chat(user: str) -> str:
    """One user turn in the Qwen chat format, ending where the assistant's answer starts."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's resize rule: both sides multiples of `factor`, area within [min, max], aspect kept."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.0f} is above Qwen2-VL's 200")
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h, w


@dataclass(frozen=True)
class VideoPatcher:
    patch: int = 14
    temporal: int = 2
    merge: int = 2
    mean: tuple[float, ...] = OPENAI_CLIP_MEAN
    std: tuple[float, ...] = OPENAI_CLIP_STD
    min_pixels: int = VIDEO_MIN_PIXELS
    max_pixels: int = VIDEO_MAX_PIXELS

    @classmethod
    def from_folder(cls, folder: Path, vision_config) -> "VideoPatcher":
        """Video processor settings if saved, else the image processor's statistics with video bounds."""
        video = read_processor_config(folder, "video_preprocessor_config.json")
        image = read_processor_config(folder, "preprocessor_config.json")
        size = video.get("size") or {}
        both = {**image, **video}
        return cls(patch=both.get("patch_size", vision_config.patch_size),
                   temporal=both.get("temporal_patch_size", vision_config.temporal_patch_size),
                   merge=both.get("merge_size", vision_config.spatial_merge_size),
                   mean=tuple(both.get("image_mean", OPENAI_CLIP_MEAN)),
                   std=tuple(both.get("image_std", OPENAI_CLIP_STD)),
                   min_pixels=size.get("shortest_edge", video.get("min_pixels", VIDEO_MIN_PIXELS)),
                   max_pixels=size.get("longest_edge", video.get("max_pixels", VIDEO_MAX_PIXELS)))

    def __call__(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(F, 3, H, W) in [-1, 1] -> (patch rows (N, 3 * t * p * p), grid (3,) = (t, h, w))."""
        h, w = smart_resize(*frames.shape[-2:], self.patch * self.merge, self.min_pixels, self.max_pixels)
        x = to_unit(frames)
        if (h, w) != tuple(frames.shape[-2:]):
            x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        x = normalize(x, self.mean, self.std)
        if pad := -x.shape[0] % self.temporal:
            x = torch.cat([x, x[-1:].expand(pad, -1, -1, -1)])
        return self.patchify(x)

    def patchify(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, c, h, w = x.shape
        p, m, t = self.patch, self.merge, self.temporal
        gt, gh, gw = f // t, h // p, w // p
        rows = x.reshape(gt, t, c, gh // m, m, p, gw // m, m, p).permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return rows.reshape(gt * gh * gw, c * t * p * p), torch.tensor([gt, gh, gw])

    def tokens(self, grid: torch.Tensor) -> int:
        """Merged visual tokens the language model sees for one video."""
        return int(grid.prod()) // self.merge ** 2


def vlm_path(spec_path: str | None, reward: str, what: str) -> str:
    if spec_path is None:
        raise JobError(f"reward `{reward}` needs the weights of {what}; set `path` in the recipe to a local "
                       "folder saved in transformers format")
    return spec_path


def check_family(family: str, reward: str) -> None:
    if family not in VLM_FAMILIES:
        raise JobError(f"reward `{reward}`: vision-language family `{family}` has no runtime adapter; "
                       f"supported: {', '.join(VLM_FAMILIES)}")


def load_vlm(path: Path, lm: bool) -> "QwenVideoModel | LlavaVideoModel":
    """The adapter for a local vision-language folder, by its config.json's `model_type`."""
    from transformers import AutoConfig

    model_type = from_local(AutoConfig, path).model_type
    if model_type in QWEN_MODEL_TYPES:
        return QwenVideoModel(path, lm)
    if model_type in LLAVA_MODEL_TYPES:
        return LlavaVideoModel(path, lm)
    raise JobError(f"{path} holds a `{model_type}` model; expected one of "
                   f"{', '.join(QWEN_MODEL_TYPES + LLAVA_MODEL_TYPES)}")


class _LoadedModel:
    """What every loaded vision-language model reports about itself (its `model` is a torch module)."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def memory_gib(self) -> float:
        return sum(p.numel() * p.element_size() for p in self.model.parameters()) / 2**30


class QwenVideoModel(_LoadedModel):
    """A local Qwen2-VL-family folder: the model (with its LM head when `lm`), tokenizer and patcher."""

    chat = staticmethod(chat)

    def __init__(self, path: Path, lm: bool):
        from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoTokenizer

        config = from_local(AutoConfig, path)
        if config.model_type not in QWEN_MODEL_TYPES:
            raise JobError(f"{path} holds a `{config.model_type}` model; expected one of {', '.join(QWEN_MODEL_TYPES)}")
        cls = AutoModelForImageTextToText if lm else AutoModel
        self.model = from_local(cls, path).eval()
        self.tokenizer = from_local(AutoTokenizer, path)
        self.patcher = VideoPatcher.from_folder(path, config.vision_config)
        self.video_token_id = config.video_token_id
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tokenizer.eos_token_id
        self._takes_types = "mm_token_type_ids" in inspect.signature(self.model.forward).parameters

    def inputs(self, texts: list[str], videos: list[list[torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Model inputs for texts with one `<|video_pad|>` per video; sequences are left-padded so the
        last position of every row is where the answer begins."""
        rows, grids, ids = [], [], []
        for text, clips in zip(texts, videos):
            pieces = text.split(VIDEO_PAD)
            if len(pieces) - 1 != len(clips):
                raise ValueError(f"text has {len(pieces) - 1} video slots for {len(clips)} videos")
            expanded = pieces[0]
            for clip, after in zip(clips, pieces[1:]):
                patches, grid = self.patcher(clip)
                rows.append(patches)
                grids.append(grid)
                expanded += VIDEO_PAD * self.patcher.tokens(grid) + after
            ids.append(self.tokenizer(expanded, add_special_tokens=False)["input_ids"])
        return self._pack(ids, rows, grids)

    def _pack(self, ids: list[list[int]], rows: list[torch.Tensor],
              grids: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        longest = max(len(i) for i in ids)
        input_ids = torch.tensor([[self.pad_id] * (longest - len(i)) + i for i in ids])
        mask = torch.tensor([[0] * (longest - len(i)) + [1] * len(i) for i in ids])
        dtype = next(self.model.parameters()).dtype
        out = {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device),
               "pixel_values_videos": torch.cat(rows).to(self.device, dtype),
               "video_grid_thw": torch.stack(grids).to(self.device)}
        if self._takes_types:  # transformers >= 5 builds multimodal RoPE from token types (2 = video)
            out["mm_token_type_ids"] = (out["input_ids"] == self.video_token_id).long() * 2
        return out

    def save_processor(self, folder: Path) -> None:
        """The video processor settings beside saved weights, so `from_folder` reads them back."""
        p = self.patcher
        config = {"patch_size": p.patch, "temporal_patch_size": p.temporal, "merge_size": p.merge,
                  "image_mean": list(p.mean), "image_std": list(p.std),
                  "size": {"shortest_edge": p.min_pixels, "longest_edge": p.max_pixels}}
        (Path(folder) / "video_preprocessor_config.json").write_text(json.dumps(config, indent=2))


def vicuna_chat(user: str) -> str:
    """One user turn in the Vicuna v1 format of LLaVA-1.5 and VILA, ending where the answer starts."""
    return ("A chat between a curious human and an artificial intelligence assistant. The assistant gives "
            f"helpful, detailed, and polite answers to the human's questions. USER: {user} ASSISTANT:")


class LlavaVideoModel(_LoadedModel):
    """A local folder in transformers' Llava layout (LLaVA; VILA, which is that architecture: a vision
    tower, a projector and a LLaMA-family language model). A video is its frames shown as images, one
    after another: each frame resized to the tower's square input, normalised as the folder's
    preprocessor_config.json says (else SigLIP's 0.5 / CLIP's statistics), in torch so gradients reach
    the pixels; the text's `VIDEO` becomes each frame's image tokens. Prompts use the Vicuna format."""

    chat = staticmethod(vicuna_chat)

    def __init__(self, path: Path, lm: bool):
        from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoTokenizer

        config = from_local(AutoConfig, path)
        if config.model_type not in LLAVA_MODEL_TYPES:
            raise JobError(f"{path} holds a `{config.model_type}` model; expected a llava model")
        self.model = from_local(AutoModelForImageTextToText if lm else AutoModel, path).eval()
        self.tokenizer = from_local(AutoTokenizer, path)
        vision = config.vision_config
        siglip = vision.model_type.startswith("siglip")
        proc = read_processor_config(path, "preprocessor_config.json")
        self.side = vision.image_size
        self.mean = tuple(proc.get("image_mean", (0.5, 0.5, 0.5) if siglip else OPENAI_CLIP_MEAN))
        self.std = tuple(proc.get("image_std", (0.5, 0.5, 0.5) if siglip else OPENAI_CLIP_STD))
        # the tower's tokens per image (CLIP adds a class token), less the one `default` selection drops
        cls_token = 0 if siglip else 1
        drop = 1 if config.vision_feature_select_strategy == "default" else 0
        self.tokens_per_frame = (self.side // vision.patch_size) ** 2 + cls_token - drop
        self.image_token_id = config.image_token_id
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.tokenizer.eos_token_id

    def pixels(self, frames: torch.Tensor) -> torch.Tensor:
        """(F, 3, H, W) in [-1, 1] -> (F, 3, side, side), normalised."""
        x = to_unit(frames)
        if tuple(x.shape[-2:]) != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bicubic", align_corners=False,
                              antialias=True).clamp(0, 1)
        return normalize(x, self.mean, self.std)

    def inputs(self, texts: list[str], videos: list[list[torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Model inputs for texts with one `VIDEO` per video, left-padded (the last position of every
        row is where the answer begins)."""
        ids, images = [], []
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        for text, clips in zip(texts, videos):
            pieces = text.split(VIDEO)
            if len(pieces) - 1 != len(clips):
                raise ValueError(f"text has {len(pieces) - 1} video slots for {len(clips)} videos")
            row = bos + self.tokenizer(pieces[0], add_special_tokens=False)["input_ids"]
            for clip, after in zip(clips, pieces[1:]):
                images.append(self.pixels(clip))
                row += [self.image_token_id] * (self.tokens_per_frame * clip.shape[0])
                row += self.tokenizer(after, add_special_tokens=False)["input_ids"]
            ids.append(row)
        longest = max(len(i) for i in ids)
        dtype = next(self.model.parameters()).dtype
        mask = torch.tensor([[0] * (longest - len(i)) + [1] * len(i) for i in ids])
        # positions count real tokens only, so a left-padded row reads as it would alone
        return {"input_ids": torch.tensor([[self.pad_id] * (longest - len(i)) + i for i in ids]).to(self.device),
                "attention_mask": mask.to(self.device), "position_ids": (mask.cumsum(-1) - 1).clamp(min=0).to(self.device),
                "pixel_values": torch.cat(images).to(self.device, dtype)}

    def save_processor(self, folder: Path) -> None:
        config = {"image_mean": list(self.mean), "image_std": list(self.std),
                  "size": {"height": self.side, "width": self.side}}
        (Path(folder) / "preprocessor_config.json").write_text(json.dumps(config, indent=2))
