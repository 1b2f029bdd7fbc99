"""The released VideoAlign reward model (VideoReward) read in its own checkpoint layout.

Layout (what VideoAlign's trainer writes and its release ships):
  model_config.json      {"data_config": {fps, num_frames, max_frame_pixels, eval_dim, prompt_template_type},
                          "model_config": {model_name_or_path, output_dim, use_special_tokens, reward_token},
                          "peft_lora_config": {lora_enable, lora_r, lora_alpha, use_rslora, ...},
                          "inference_config": {VQ_mean, VQ_std, MQ_mean, ...}}   (the last one optional)
  checkpoint-<step>/     the latest step is read:
      model.pth                                   a full state dict, or
      adapter_model.safetensors + non_lora_state_dict.pth   LoRA factors + the other trained tensors
      tokenizer/                                  the base tokenizer with the reward tokens added

The model is a Qwen2-VL whose language model's final hidden states feed `rm_head` (a bias-free linear
layer, `output_dim` outputs). With `reward_token = special`, the prompt holds one reward token per
dimension (<|VQ_reward|>, <|MQ_reward|>, <|TA_reward|>, VQ and MQ before the user's prompt, TA after it)
and each dimension's score is the head's output at its token (with output_dim 3, output i at token i);
with `last`, the outputs at the last token are the dimensions. Scores are standardised with
`inference_config` when it is present, as the release's inference does by default.

The base weights are not in the release (LoRA deltas are): they come from the reward's `model` (its `path`,
a local Qwen2-VL folder). LoRA factors are merged into the base weights at load time (W + s * B @ A,
s = alpha / r, or alpha / sqrt(r) with rsLoRA), so scoring needs no peft. Tensor names of both
transformers layouts are accepted (`model.layers.*` / `visual.*` of transformers 4.4x and
`model.language_model.*` / `model.visual.*` of later releases).

The released prompt's wording is VideoAlign's; vpo ships a prompt of the same layout in its own words.
Put the released wording in `prompt_template.txt` beside model_config.json (`{text_prompt}` where the
prompt goes) to reproduce published scores exactly.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from runtime.errors import JobError

from .loading import from_local
from .pixels import sample_frames
from .vlm import VIDEO, QwenVideoModel, chat

CONFIG, PROMPT_FILE = "model_config.json", "prompt_template.txt"
FULL, ADAPTER, NON_LORA, TOKENIZER = "model.pth", "adapter_model.safetensors", "non_lora_state_dict.pth", "tokenizer"
DIMENSIONS = {"VQ": "visual quality", "MQ": "motion quality", "TA": "text alignment"}

# vpo's wording of the `detailed_special` layout: one section per dimension, each ending on its token;
# the user's prompt comes after visual and motion quality, inside the text-alignment section.
SPECIAL_TEMPLATE = (
    "Rate a generated video on three independent criteria, each from 0 (worst) to 10 (best).\n\n"
    "Visual quality: how clear, detailed, plausible and well composed each frame is.\n"
    "The visual quality rating: <|VQ_reward|>\nEND\n\n"
    "Motion quality: how stable, natural, smooth and ample the movement is across frames.\n"
    "The motion quality rating: <|MQ_reward|>\nEND\n\n"
    "Text alignment: how well subjects, actions, scene, style and camera follow the prompt.\n"
    "Prompt: {text_prompt}\n"
    "The text alignment rating: <|TA_reward|>\nEND\n")


def reward_token(dim: str) -> str:
    return f"<|{dim}_reward|>"


def is_videoalign(folder: Path) -> bool:
    """True when `folder` is in the released VideoAlign layout."""
    return (Path(folder) / CONFIG).is_file() and any(_checkpoints(Path(folder)))


def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in folder.glob("checkpoint-*")
             if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))]
    return sorted(found)


def read_config(folder: Path) -> dict:
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise JobError(f"{folder / CONFIG}: not a readable VideoAlign model config ({e})") from None
    for section in ("data_config", "model_config", "peft_lora_config"):
        if not isinstance(config.get(section), dict):
            raise JobError(f"{folder / CONFIG}: the `{section}` section is missing")
    return config


def dimensions(config: dict) -> list[str]:
    dims = config["data_config"].get("eval_dim", ["VQ"])
    return [dims] if isinstance(dims, str) else list(dims)


def prompt_template(folder: Path, config: dict) -> str:
    """The prompt around the user's text: `prompt_template.txt` if present, else vpo's wording."""
    if (folder / PROMPT_FILE).is_file():
        return (folder / PROMPT_FILE).read_text()
    kind = config["data_config"].get("prompt_template_type", "none")
    if kind == "none":
        return "{text_prompt}"
    if kind == "detailed_special" and dimensions(config) == list(DIMENSIONS):
        return SPECIAL_TEMPLATE
    raise JobError(f"{folder / CONFIG}: prompt_template_type `{kind}` for dimensions {dimensions(config)} has no "
                   f"built-in wording; write the prompt the model was trained with to {folder / PROMPT_FILE} "
                   "with `{text_prompt}` where the prompt goes")


# ---- weights -----------------------------------------------------------------------------------------
def _load_pth(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise JobError(f"{path}: expected a state dict of tensors")
    return state


def released_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint folder holds, merged from the full or the LoRA + non-LoRA files."""
    if (checkpoint / FULL).is_file():
        return _load_pth(checkpoint / FULL)
    if (checkpoint / ADAPTER).is_file() and (checkpoint / NON_LORA).is_file():
        from safetensors.torch import load_file

        return {**_load_pth(checkpoint / NON_LORA), **load_file(str(checkpoint / ADAPTER))}
    raise JobError(f"{checkpoint}: holds neither {FULL} nor {ADAPTER} with {NON_LORA}")


def canonical_key(key: str) -> str:
    """A released tensor name as the name of the module it belongs to in vpo's model: the peft wrapper,
    adapter name and `base_layer` dropped; language-model tensors under `language_model.`, vision ones
    under `visual.`, the head as `rm_head.` and the LM head as `lm_head.`."""
    key = key.removeprefix("base_model.model.")
    key = key.replace(".base_layer.", ".").replace(".default.", ".")
    key = re.sub(r"\.default$", "", key)
    for old, new in (("model.language_model.", "language_model."), ("model.visual.", "visual."),
                     ("model.", "language_model.")):
        if key.startswith(old):
            return new + key.removeprefix(old)
    return key


def merge_lora(state: dict[str, torch.Tensor], alpha: float, rank: int, rslora: bool) -> dict[str, torch.Tensor]:
    """Folds every `X.lora_A.weight` (r, in) / `X.lora_B.weight` (out, r) pair into `X.weight`:
    W + s * B @ A with s = alpha / r (alpha / sqrt(r) with rsLoRA). Other tensors pass through."""
    scale = alpha / math.sqrt(rank) if rslora else alpha / rank
    out = {k: v for k, v in state.items() if ".lora_" not in k}
    for key in [k for k in state if k.endswith(".lora_A.weight")]:
        prefix = key.removesuffix(".lora_A.weight")
        b = state.get(prefix + ".lora_B.weight")
        if b is None or prefix + ".weight" not in out:
            raise JobError(f"LoRA factor {key} has no matching lora_B or base weight {prefix}.weight")
        a, base = state[key].float(), out[prefix + ".weight"]
        out[prefix + ".weight"] = (base.float() + scale * (b.float() @ a)).to(base.dtype)
    leftover = [k for k in state if ".lora_" in k and not k.endswith((".lora_A.weight", ".lora_B.weight"))]
    if leftover:
        raise JobError(f"LoRA tensors vpo cannot merge (embedding or other adapters): {leftover[:4]}")
    return out


class VideoAlignModel(nn.Module):
    """Qwen2-VL + `rm_head` scoring videos per VideoAlign dimension, standardised as released."""

    def __init__(self, vlm: QwenVideoModel, rm_head: nn.Linear, dims: list[str], template: str, frames: int,
                 pooling: str, token_ids: list[int], norm: dict[str, tuple[float, float]]):
        super().__init__()
        self.vlm, self.backbone, self.rm_head = vlm, vlm.model, rm_head
        self.dims, self.heads, self.template, self.frames = dims, [d.lower() for d in dims], template, frames
        self.pooling, self.token_ids, self.norm = pooling, token_ids, norm

    def text(self, prompt: str) -> str:
        return chat(VIDEO + self.template.replace("{text_prompt}", prompt))

    def raw(self, videos: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """(B, dims) head outputs before standardisation."""
        clips = [[v] for v in sample_frames(videos, self.frames)]
        inputs = self.vlm.inputs([self.text(p) for p in prompts], clips)
        hidden = self.backbone(**inputs).last_hidden_state
        logits = self.rm_head(hidden.to(self.rm_head.weight.dtype)).float()  # (B, L, N)
        if self.pooling == "last":  # left-padded: the last position is every row's last token
            return logits[:, -1]
        ids = inputs["input_ids"]
        rows = []
        for b in range(ids.shape[0]):
            positions = [int(p) for t in self.token_ids for p in (ids[b] == t).nonzero().flatten()]
            if len(positions) != len(self.dims):
                raise JobError(f"VideoAlign prompt holds {len(positions)} reward tokens for {len(self.dims)} "
                               "dimensions; the prompt template must contain each dimension's token once")
            per_token = logits[b, positions]  # (dims, N)
            rows.append(per_token.diagonal() if per_token.shape[1] == len(self.dims) else per_token[:, 0])
        return torch.stack(rows)

    def forward(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        raw = self.raw(videos, prompts)
        out = {}
        for i, (dim, head) in enumerate(zip(self.dims, self.heads)):
            mean, std = self.norm.get(dim, (0.0, 1.0))
            out[head] = (raw[:, i] - mean) / std
        return out


def load_videoalign(folder: Path, base: Path | None, frames: int, name: str) -> VideoAlignModel:
    """Builds the released model from its folder and the local Qwen2-VL base it was trained from."""
    from transformers import AutoTokenizer

    config = read_config(folder)
    data, model_cfg, lora = config["data_config"], config["model_config"], config["peft_lora_config"]
    if base is None:
        raise JobError(f"reward `{name}`: the VideoAlign release holds LoRA deltas over "
                       f"{model_cfg.get('model_name_or_path', 'Qwen2-VL')}; set `path` on the reward's model to a "
                       "local folder of that base model")
    step, checkpoint = _checkpoints(folder)[-1]
    dims = dimensions(config)
    pooling = "special" if model_cfg.get("use_special_tokens") or model_cfg.get("reward_token") == "special" else \
        model_cfg.get("reward_token", "last")
    if pooling not in ("special", "last"):
        raise JobError(f"{folder / CONFIG}: reward_token `{pooling}` is not supported (special or last)")
    vlm = QwenVideoModel(Path(base), lm=False)
    tokens = [reward_token(d) for d in dims]
    if (checkpoint / TOKENIZER).is_dir():
        vlm.tokenizer = from_local(AutoTokenizer, checkpoint / TOKENIZER)
    elif pooling == "special":
        vlm.tokenizer.add_special_tokens({"additional_special_tokens": tokens})
    token_ids = vlm.tokenizer.convert_tokens_to_ids(tokens) if pooling == "special" else []
    if pooling == "special" and any(t is None or t == vlm.tokenizer.unk_token_id for t in token_ids):
        raise JobError(f"{checkpoint / TOKENIZER}: the tokenizer lacks the reward tokens {tokens}")
    if len(vlm.tokenizer) > vlm.model.get_input_embeddings().num_embeddings:
        vlm.model.resize_token_embeddings(len(vlm.tokenizer))
    state = {canonical_key(k): v for k, v in released_state(checkpoint).items()}
    head_weight = state.pop("rm_head.weight", None)
    if head_weight is None:
        raise JobError(f"{checkpoint}: no `rm_head.weight` (the reward head) among its tensors")
    state.pop("lm_head.weight", None)  # the language-model head is unused by the reward
    target = vlm.model.state_dict()
    plain = {k: v for k, v in state.items() if ".lora_" not in k}
    unexpected = sorted(set(plain) - set(target))
    shapes = [k for k in plain if k in target and plain[k].shape != target[k].shape]
    if unexpected or shapes:
        raise JobError(f"{checkpoint}: tensors that do not fit the base model at {base}: "
                       f"{(unexpected + shapes)[:5]} (is `path` on the reward's model the base it was trained from?)")
    state = {**target, **state}  # a LoRA-only release keeps the base's other tensors
    if lora.get("lora_enable"):
        state = merge_lora(state, float(lora["lora_alpha"]), int(lora["lora_r"]), bool(lora.get("use_rslora")))
    vlm.model.load_state_dict(state)
    head = nn.Linear(head_weight.shape[1], head_weight.shape[0], bias=False)
    with torch.no_grad():
        head.weight.copy_(head_weight.float())
    if head_weight.shape[0] not in (1, len(dims)) or (pooling == "last" and head_weight.shape[0] != len(dims)):
        raise JobError(f"{checkpoint}: rm_head has {head_weight.shape[0]} outputs for dimensions {dims}")
    vlm.patcher = replace(vlm.patcher, max_pixels=int(data.get("max_frame_pixels") or vlm.patcher.max_pixels))
    vlm.patcher = replace(vlm.patcher, min_pixels=min(vlm.patcher.min_pixels, vlm.patcher.max_pixels))
    pad = vlm.tokenizer.pad_token_id
    vlm.pad_id = pad if pad is not None else vlm.tokenizer.eos_token_id
    inference = config.get("inference_config") or {}
    norm = {d: (float(inference[f"{d}_mean"]), float(inference[f"{d}_std"])) for d in dims
            if f"{d}_mean" in inference and f"{d}_std" in inference}
    count = int(data["num_frames"]) if data.get("num_frames") else frames
    return VideoAlignModel(vlm, head, dims, prompt_template(folder, config), count, pooling, token_ids,
                           norm).eval()
