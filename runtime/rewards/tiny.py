"""Tiny random models in the exact folder layouts the rewards load, built offline from configs.

They exercise the real loading code (tests, smoke runs of recipes) without downloading anything:
a byte-level BPE tokenizer written from its own vocabulary, CLIP (+ an aesthetic head), Qwen2-VL /
Qwen2.5-VL, DINOv2 and a saved video reward model. Weights are random (seeded): scores mean nothing.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from .clip import AESTHETIC_HEAD
from .loading import quiet_transformers

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
CLIP_SPECIAL = ["<|startoftext|>", "<|endoftext|>"]
# merges (in rank order) that make the judge's answer words single tokens, as in real vocabularies;
# the space-prefixed ones rank first so " yes" does not split into " " + "yes"
ANSWER_MERGES = [("Ġ", "y"), ("Ġy", "e"), ("Ġye", "s"), ("Ġ", "n"), ("Ġn", "o"),
                 ("y", "e"), ("ye", "s"), ("Y", "e"), ("Ye", "s"), ("n", "o"), ("N", "o")]


def write_tokenizer(folder: Path, special: list[str], eos: str, pad: str, bos: str | None = None) -> dict[str, int]:
    """A byte-level BPE tokenizer (every byte a token, plus ANSWER_MERGES and `special`) saved for
    AutoTokenizer; with `bos`, every encoding is wrapped as bos ... eos (CLIP's text format)."""
    from tokenizers import Tokenizer, decoders, models, processors
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    for a, b in ANSWER_MERGES:
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=ANSWER_MERGES))
    tok.pre_tokenizer = ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(special)
    ids = {s: tok.token_to_id(s) for s in special}
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A {eos}",
                                                           special_tokens=[(bos, ids[bos]), (eos, ids[eos])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad, bos_token=bos)
    fast.save_pretrained(folder)
    config_path = Path(folder) / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # a name transformers 4 and 5 both know
    config_path.write_text(json.dumps(config, indent=2))
    return {"size": tok.get_vocab_size(), **ids}


def _processor_json(folder: Path, name: str, config: dict) -> None:
    (Path(folder) / name).write_text(json.dumps(config, indent=2))


def tiny_clip(folder: str | Path, seed: int = 0, aesthetic: bool = True) -> Path:
    """CLIP with 32 px images, 8 px patches, 2 layers of width 32, 16-d projections."""
    from safetensors.torch import save_file
    from transformers import CLIPConfig, CLIPModel

    folder = Path(folder)
    ids = write_tokenizer(folder, CLIP_SPECIAL, eos="<|endoftext|>", pad="<|endoftext|>", bos="<|startoftext|>")
    text = dict(vocab_size=ids["size"], hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=64, bos_token_id=ids["<|startoftext|>"],
                eos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"])
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2)
    torch.manual_seed(seed)
    with quiet_transformers():
        CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(folder)
    _processor_json(folder, "preprocessor_config.json",
                    {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}})
    if aesthetic:
        gen = torch.Generator().manual_seed(seed + 1)
        save_file({"weight": torch.randn(1, 16, generator=gen), "bias": torch.full((1,), 5.0)},
                  str(folder / AESTHETIC_HEAD))
    return folder


def tiny_qwen_vl(folder: str | Path, seed: int = 0, model_type: str = "qwen2_vl") -> Path:
    """Qwen2-VL (or Qwen2.5-VL) with 4 px patches, 2x2 merge, 2-frame tubes, width 32, 2 + 2 layers;
    video frames are resized into 256..1024 pixels (16 merged tokens per 2 frames at most)."""
    from transformers import AutoModelForImageTextToText

    folder = Path(folder)
    ids = write_tokenizer(folder, QWEN_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>")
    text = dict(vocab_size=ids["size"], hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    tokens = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    config = _qwen_config(model_type, text, tokens)
    with quiet_transformers():
        AutoModelForImageTextToText.from_config(config).save_pretrained(folder)
    _processor_json(folder, "video_preprocessor_config.json",
                    {"patch_size": 4, "temporal_patch_size": 2, "merge_size": 2,
                     "size": {"shortest_edge": 256, "longest_edge": 1024}})
    return folder


LLAVA_SPECIAL = ["<s>", "</s>", "<unk>", "<image>"]


def tiny_llava(folder: str | Path, seed: int = 0) -> Path:
    """A model in transformers' Llava layout (the `llava` and `vila` families): a SigLIP tower on 16 px
    frames with 4 px patches (16 tokens a frame), a GELU projector and a LLaMA of width 32, 2 layers."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    folder = Path(folder)
    ids = write_tokenizer(folder, LLAVA_SPECIAL, eos="</s>", pad="<unk>")
    vision = dict(model_type="siglip_vision_model", image_size=16, patch_size=4, hidden_size=32,
                  intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    text = dict(model_type="llama", vocab_size=ids["size"], hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<unk>"])
    torch.manual_seed(seed)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=ids["<image>"],
                         vision_feature_select_strategy="full", vision_feature_layer=-1)
    with quiet_transformers():
        LlavaForConditionalGeneration(config).save_pretrained(folder)
    _processor_json(folder, "preprocessor_config.json",
                    {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "size": {"height": 16, "width": 16}})
    return folder


def _qwen_config(model_type: str, text: dict, tokens: dict):
    if model_type == "qwen2_vl":
        from transformers import Qwen2VLConfig

        vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, patch_size=4, spatial_merge_size=2,
                      temporal_patch_size=2)
        return Qwen2VLConfig(text_config=text, vision_config=vision, **tokens)
    if model_type == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        vision = dict(depth=2, hidden_size=32, out_hidden_size=32, intermediate_size=64, num_heads=2, patch_size=4,
                      spatial_merge_size=2, temporal_patch_size=2, window_size=16, fullatt_block_indexes=[1])
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **tokens)
    raise ValueError(f"no tiny config for {model_type!r}")


def tiny_dinov2(folder: str | Path, seed: int = 0) -> Path:
    """DINOv2 on 32 px crops with 8 px patches (a 4 x 4 grid), 2 layers of width 32."""
    from transformers import Dinov2Config, Dinov2Model

    folder = Path(folder)
    torch.manual_seed(seed)
    config = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, image_size=32,
                          patch_size=8)
    with quiet_transformers():
        Dinov2Model(config).save_pretrained(folder)
    _processor_json(folder, "preprocessor_config.json",
                    {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}})
    return folder


def tiny_reward_model(folder: str | Path, heads: list[str], seed: int = 0, frames: int = 4) -> Path:
    """A VideoRewardModel on a tiny Qwen2-VL backbone, heads drawn at a readable scale, saved to `folder`."""
    from .video_reward_model import VideoRewardModel

    with tempfile.TemporaryDirectory() as scratch:
        model = VideoRewardModel.from_backbone(tiny_qwen_vl(scratch, seed), heads, frames, seed)
    with torch.no_grad():
        model.head.weight.normal_(0, 1, generator=torch.Generator().manual_seed(seed + 1))
    with quiet_transformers():
        model.save(folder)
    return Path(folder)
