"""Tiny random models written in the released checkpoints' own layouts (file names, config keys, tensor
names), with the reference model kept so tests can compute the expected scores directly."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from runtime.rewards import tiny
from runtime.rewards.loading import quiet_transformers

VA_TOKENS = ["<|VQ_reward|>", "<|MQ_reward|>", "<|TA_reward|>"]
VA_NORM = {"VQ_mean": 0.5, "VQ_std": 2.0, "MQ_mean": -0.25, "MQ_std": 0.5, "TA_mean": 1.0, "TA_std": 4.0}


def _old_names(key: str) -> str:
    """transformers >= 4.52 tensor names -> the 4.4x names VideoAlign's release was saved with."""
    for new, old in (("base_model.model.model.language_model.", "base_model.model.model."),
                     ("base_model.model.model.visual.", "base_model.model.visual.")):
        if key.startswith(new):
            return old + key.removeprefix(new)
    return key


def videoalign(folder: Path, base: Path, full: bool, seed: int = 0, max_pixels: int = 1024):
    """A VideoAlign release on the tiny Qwen2-VL at `base`: special reward tokens added to the tokenizer,
    a bias-free (1, D) `rm_head`, LoRA (r 4, alpha 8) on every language-model linear layer, saved as
    checkpoint-12/model.pth (`full`) or adapter_model.safetensors + non_lora_state_dict.pth.
    Returns (the peft reference model, its tokenizer)."""
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration

    folder, checkpoint = Path(folder), Path(folder) / "checkpoint-12"
    (checkpoint / "tokenizer").mkdir(parents=True)
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    tokenizer.add_special_tokens({"additional_special_tokens": VA_TOKENS})
    tokenizer.save_pretrained(checkpoint / "tokenizer")
    torch.manual_seed(seed)
    with quiet_transformers():
        model = Qwen2VLForConditionalGeneration.from_pretrained(str(base), local_files_only=True)
    model.rm_head = nn.Linear(model.config.text_config.hidden_size, 1, bias=False)
    model.resize_token_embeddings(len(tokenizer))
    excluded = ("lm_head", "rm_head", "embed_tokens", "visual")
    targets = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not any(e in n for e in excluded)]
    peft_model = get_peft_model(model, LoraConfig(target_modules=targets, r=4, lora_alpha=8, lora_dropout=0.0,
                                                  bias="none", task_type="CAUSAL_LM"))
    with torch.no_grad():  # lora_B starts at zero: draw it so the deltas matter
        gen = torch.Generator().manual_seed(seed + 1)
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        peft_model.base_model.model.rm_head.weight.normal_(0, 1, generator=gen)
    peft_model.eval()
    if full:
        torch.save({_old_names(k): v for k, v in peft_model.state_dict().items()}, checkpoint / "model.pth")
    else:
        lora = {_old_names(k): v.contiguous() for k, v in get_peft_model_state_dict(peft_model).items()}
        save_file(lora, str(checkpoint / "adapter_model.safetensors"))
        non_lora = {_old_names(k): v for k, v in peft_model.state_dict().items()
                    if "lora_" not in k and ("rm_head" in k or "embed_tokens" in k)}
        torch.save(non_lora, checkpoint / "non_lora_state_dict.pth")
    config = {
        "data_config": {"meta_data": "x.csv", "data_dir": "videos", "max_frame_pixels": max_pixels, "num_frames": None,
                        "fps": 2.0, "eval_dim": ["VQ", "MQ", "TA"], "prompt_template_type": "detailed_special",
                        "sample_type": "uniform"},
        "model_config": {"model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct", "output_dim": 1,
                         "use_special_tokens": True, "reward_token": "special"},
        "peft_lora_config": {"lora_enable": True, "vision_lora": False, "lora_r": 4, "lora_alpha": 8,
                             "lora_dropout": 0.0, "use_rslora": False,
                             "lora_namespan_exclude": list(excluded)},
        "inference_config": VA_NORM,
    }
    (folder / "model_config.json").write_text(json.dumps(config, indent=2))
    return peft_model, tokenizer


def tiny_base(folder: Path) -> Path:
    return tiny.tiny_qwen_vl(folder)
