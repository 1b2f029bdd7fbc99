"""A VideoAlign-style multi-head video reward model: a vision-language backbone (the Qwen2-VL family, or
the LLaVA layout: LLaVA, VILA) reads the video and the prompt; the final hidden state at the last
prompt token feeds one linear head per quality dimension.

The same class scores videos as a reward and is what the reward_model trainer trains (`forward` keeps
gradients). Saved layout (`save(dir)` / `load(dir)`):
  reward_model.json   {"format", "heads", "frames", "template"}
  heads.safetensors   `weight` (H, D), `bias` (H,)
  backbone/           the transformers backbone, its tokenizer and its processor settings
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from runtime.errors import JobError

from .base import DeviceNeeds, Reward
from .pixels import sample_frames
from .vlm import VIDEO, LlavaVideoModel, QwenVideoModel, load_vlm

FORMAT = "vpo-video-reward-model/1"
META, HEADS, BACKBONE = "reward_model.json", "heads.safetensors", "backbone"
TEMPLATE = VIDEO + '\nRate this video, generated from the prompt: "{prompt}", on {dimensions}.'
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class VideoRewardModel(nn.Module):
    def __init__(self, vlm: QwenVideoModel | LlavaVideoModel, heads: list[str], frames: int = 8,
                 template: str = TEMPLATE):
        super().__init__()
        if len(set(heads)) != len(heads) or not heads:
            raise ValueError(f"reward model heads must be distinct and non-empty, got {heads}")
        self.vlm, self.backbone = vlm, vlm.model
        self.heads, self.frames, self.template = list(heads), frames, template
        config = self.backbone.config
        hidden = getattr(config, "text_config", config).hidden_size
        self.head = nn.Linear(hidden, len(heads))

    @classmethod
    def from_backbone(cls, path: str | Path, heads: list[str], frames: int = 8, seed: int = 0) -> "VideoRewardModel":
        """A new reward model on a pretrained backbone folder, heads initialised near zero (seeded)."""
        model = cls(load_vlm(Path(path), lm=False), heads, frames)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=gen) * 1e-3)
            model.head.bias.zero_()
        return model

    def text(self, prompt: str) -> str:
        return self.vlm.chat(self.template.format(prompt=prompt, dimensions=", ".join(self.heads)))

    def forward(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        """videos (B, F, 3, H, W) in [-1, 1] -> {head: (B,) float32}, differentiable."""
        clips = [[v] for v in sample_frames(videos, self.frames)]
        inputs = self.vlm.inputs([self.text(p) for p in prompts], clips)
        hidden = self.backbone(**inputs).last_hidden_state[:, -1]  # left-padded: the last prompt token
        scores = self.head(hidden.to(self.head.weight.dtype)).float()
        return {name: scores[:, i] for i, name in enumerate(self.heads)}

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        (folder / BACKBONE).mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(folder / BACKBONE)
        self.vlm.tokenizer.save_pretrained(folder / BACKBONE)
        self.vlm.save_processor(folder / BACKBONE)
        save_file({k: v.detach().float().cpu().contiguous() for k, v in self.head.state_dict().items()},
                  str(folder / HEADS))
        meta = {"format": FORMAT, "heads": self.heads, "frames": self.frames, "template": self.template}
        (folder / META).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> "VideoRewardModel":
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / META).is_file():
            raise JobError(f"{folder} is not a saved video reward model ({META} is missing)")
        meta = json.loads((folder / META).read_text())
        if meta.get("format") != FORMAT:
            raise JobError(f"{folder / META}: format {meta.get('format')!r}, this runtime reads {FORMAT!r}")
        model = cls(load_vlm(folder / BACKBONE, lm=False), meta["heads"], meta["frames"], meta["template"])
        model.head.load_state_dict(load_file(str(folder / HEADS)))
        return model.eval()


class VideoRewardModelReward(Reward):
    """A saved VideoRewardModel behind the reward protocol: every head plus `overall`."""

    bounded = False  # Bradley-Terry heads are logits on the whole real line

    def __init__(self, model: VideoRewardModel, name: str = "video_reward_model", dtype: str = "bf16"):
        self.model = model.eval().requires_grad_(False)
        self.name, self.heads, self.dtype = name, tuple(model.heads), DTYPES[dtype]
        n_params = sum(p.numel() for p in model.parameters())
        gib = n_params * torch.finfo(self.dtype).bits / 8 / 2**30
        self.needs = DeviceNeeds(device="gpu", memory_gib=round(gib * 1.2 + 1.0, 3), max_batch=4)

    def _move(self, device: torch.device) -> None:
        self.model.to(device, self.dtype if device.type == "cuda" else torch.float32)

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        return self.model(videos, prompts)


def load_reward_model(folder: Path, name: str, expected_heads: list[str] | None,
                      dtype: str = "bf16") -> VideoRewardModelReward:
    """Loads a saved reward model, checking its heads are the ones the recipe names."""
    model = VideoRewardModel.load(folder)
    if expected_heads and list(expected_heads) != model.heads:
        raise JobError(f"reward `{name}`: the recipe names heads {list(expected_heads)} but the model at {folder} "
                       f"has {model.heads}")
    return VideoRewardModelReward(model, name, dtype)
