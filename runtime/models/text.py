"""Prompt encoding: a tokenizer plus a frozen transformers encoder, following each pipeline's convention."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .policy import TextCond

PAD, UNK, EOS = "<pad>", "<unk>", "</s>"


def word_tokenizer(words: list[str] | tuple[str, ...], eos: bool = True):
    """A word-level fast tokenizer over a fixed vocabulary, built offline (no download): lower-cased,
    split on whitespace and punctuation; `<pad>` = 0, `<unk>` = 1 and, with `eos`, `</s>` = 2 appended
    to every prompt as T5 tokenizers do. Saved with `save_pretrained`, loaded with `AutoTokenizer`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, UNK] + ([EOS] if eos else [])
    vocab = {w: i for i, w in enumerate(dict.fromkeys([*specials, *(w.lower() for w in words)]))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if eos:
        tok.post_processor = processors.TemplateProcessing(single=f"$A {EOS}", special_tokens=[(EOS, vocab[EOS])])
    extra = {"eos_token": EOS} if eos else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK, **extra)


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


class TextEncoder(nn.Module):
    """Tokenize to a fixed length and run the frozen encoder.

    `mask_padding` follows the Wan pipeline: the encoder sees the attention mask and states past each
    prompt's length are zeroed. Without it (the CogVideoX pipeline) the encoder runs unmasked over the
    padded sequence and every state is kept; the returned mask is informative only."""

    def __init__(self, tokenizer, model: nn.Module, length: int, mask_padding: bool = True):
        super().__init__()
        self.tokenizer = tokenizer
        self.model = model.requires_grad_(False).eval()
        self.length = int(length)
        self.mask_padding = mask_padding

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> TextCond:
        tok = self.tokenizer(list(prompts), padding="max_length", max_length=self.length, truncation=True,
                             return_attention_mask=True, return_tensors="pt")
        device = next(self.model.parameters()).device
        ids, mask = tok.input_ids.to(device), tok.attention_mask.to(device)
        if not self.mask_padding:
            return TextCond(self.model(input_ids=ids).last_hidden_state, mask.bool())
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return TextCond(hidden * mask.unsqueeze(-1).to(hidden.dtype), mask.bool())
