"""CLIP weights saved by open_clip (HPSv2's `HPS_v2_compressed.pt` / `HPS_v2.1_compressed.pt`, LAION's
open_clip checkpoints) loaded into a transformers CLIPModel, without open_clip installed.

The file is a torch state dict, or a dict holding one under `state_dict`. open_clip names (`visual.*`,
`transformer.resblocks.*`, `token_embedding`, `ln_final`, `text_projection`, `logit_scale`) map one to one
onto transformers' CLIP modules; attention's packed `in_proj_weight` (3D, D) splits into q, k, v and the
projections (D, E) transpose into linear weights. The model's shape comes from `config.json` in the CLIP
folder (for HPSv2: laion/CLIP-ViT-H-14-laion2B-s32B-b79K's config, tokenizer and preprocessor files).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from runtime.errors import JobError

_BLOCK = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
          "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
_PLAIN = {"visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
          "visual.class_embedding": "vision_model.embeddings.class_embedding",
          "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
          "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
          "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
          "visual.ln_post.weight": "vision_model.post_layernorm.weight",
          "visual.ln_post.bias": "vision_model.post_layernorm.bias",
          "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
          "positional_embedding": "text_model.embeddings.position_embedding.weight",
          "ln_final.weight": "text_model.final_layer_norm.weight",
          "ln_final.bias": "text_model.final_layer_norm.bias",
          "logit_scale": "logit_scale"}
_TRANSPOSED = {"visual.proj": "visual_projection.weight", "text_projection": "text_projection.weight"}
_IGNORED = ("attn_mask",)  # a buffer open_clip rebuilds; transformers builds its causal mask itself


def is_open_clip_state(state: dict) -> bool:
    return "visual.conv1.weight" in state and "token_embedding.weight" in state


def read_open_clip(path: Path) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - not a plain tensor file
        raise JobError(f"{path}: not a torch state dict vpo can read without running code ({type(e).__name__})") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise JobError(f"{path}: expected a state dict of tensors (or one under `state_dict`)")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DistributedDataParallel
    if not is_open_clip_state(state):
        raise JobError(f"{path}: not open_clip CLIP weights (no visual.conv1.weight / token_embedding.weight)")
    return state


def to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip tensor names and shapes -> transformers CLIPModel's."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(_IGNORED):
            continue
        if key in _PLAIN:
            out[_PLAIN[key]] = value
            continue
        if key in _TRANSPOSED:
            out[_TRANSPOSED[key]] = value.t().contiguous()
            continue
        m = re.fullmatch(r"(visual\.)?transformer\.resblocks\.(\d+)\.(.+)", key)
        if not m:
            raise JobError(f"open_clip tensor `{key}` has no transformers CLIP counterpart")
        tower = "vision_model" if m.group(1) else "text_model"
        prefix, rest = f"{tower}.encoder.layers.{m.group(2)}.", m.group(3)
        if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
            kind = rest.rsplit("_", 1)[1]  # weight | bias
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                out[f"{prefix}self_attn.{name}.{kind}"] = part.contiguous()
            continue
        module, _, param = rest.rpartition(".")
        if module not in _BLOCK:
            raise JobError(f"open_clip tensor `{key}` ({module}) has no transformers CLIP counterpart "
                           "(layer scale and other open_clip-only blocks are not supported)")
        out[f"{prefix}{_BLOCK[module]}.{param}"] = value
    return out


def load_into(model, path: Path) -> None:
    """Loads an open_clip file into `model` (a transformers CLIPModel), every tensor accounted for."""
    state = to_transformers(read_open_clip(path))
    target = {k: v for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    missing, unexpected = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    wrong = [k for k in state if k in target and state[k].shape != target[k].shape]
    if missing or unexpected or wrong:
        raise JobError(f"{path} does not fit the CLIP model of its folder's config.json: missing {missing[:3]}, "
                       f"unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}")
    model.load_state_dict(state, strict=False)
