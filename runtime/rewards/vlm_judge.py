"""A vision-language judge (the Qwen2-VL family, or the LLaVA layout: LLaVA, VILA): P("yes") to a
question about a video, or which of two.

Pointwise score = P(yes) / (P(yes) + P(no)) from the next-token distribution where the answer starts,
summing the probabilities of the spellings of each word that are single tokens ("yes", "Yes", " yes",
...). Pairwise mode shows video A then video B and reads P(A) / (P(A) + P(B)) the same way; asking both
orders and keeping agreeing verdicts is the position-swap check.
"""
from __future__ import annotations

from pathlib import Path

import torch

from runtime.algorithms.pairs import swap_consistent
from runtime.errors import JobError

from .base import DeviceNeeds, Reward
from .pixels import sample_frames
from .vlm import VIDEO, load_vlm

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def answer_token_ids(tokenizer, word: str) -> list[int]:
    """Token ids of the single-token spellings of `word` (lower/capitalised/upper, with or without a
    leading space)."""
    ids = set()
    for spelling in {word.lower(), word.capitalize(), word.upper()}:
        for text in (spelling, " " + spelling):
            encoded = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(encoded) == 1:
                ids.add(encoded[0])
    if not ids:
        raise JobError(f"the judge's tokenizer has no single token for `{word}`")
    return sorted(ids)


def two_way_probability(logits: torch.Tensor, first_ids: list[int], second_ids: list[int]) -> torch.Tensor:
    """logits (B, V) -> P(first) / (P(first) + P(second)), each side summed over its token ids."""
    logits = logits.float()
    return torch.sigmoid(logits[:, first_ids].logsumexp(-1) - logits[:, second_ids].logsumexp(-1))


class VlmJudgeReward(Reward):
    """`vlm_judge { model, question, frames, pairwise }` over a local Qwen2-VL-family folder."""

    def __init__(self, path: Path, question: str, frames: int = 8, pairwise: bool = False, dtype: str = "bf16",
                 name: str = "vlm_judge"):
        self.vlm = load_vlm(path, lm=True)
        self.vlm.model.requires_grad_(False)
        self.question, self.frames, self.pairwise, self.dtype = question, frames, pairwise, DTYPES[dtype]
        self.name, self.heads = name, (name,)
        self.yes = answer_token_ids(self.vlm.tokenizer, "yes")
        self.no = answer_token_ids(self.vlm.tokenizer, "no")
        self.first = answer_token_ids(self.vlm.tokenizer, "A")
        self.second = answer_token_ids(self.vlm.tokenizer, "B")
        n_params = sum(p.numel() for p in self.vlm.model.parameters())
        gib = n_params * torch.finfo(self.dtype).bits / 8 / 2**30
        self.needs = DeviceNeeds(device="gpu", memory_gib=round(gib * 1.2 + 1.0, 3), max_batch=4)

    def _move(self, device: torch.device) -> None:
        # bf16 on a CPU is slow and lossy: the CPU path stays fp32, accelerators take the recipe's dtype
        self.vlm.model.to(device, self.dtype if device.type == "cuda" else torch.float32)

    def pointwise_text(self, prompt: str) -> str:
        return self.vlm.chat(f'{VIDEO}\nThis video was generated from the prompt: "{prompt}"\n'
                             f"{self.question} Answer yes or no.")

    def pairwise_text(self, prompt: str) -> str:
        return self.vlm.chat(f'Video A: {VIDEO}\nVideo B: {VIDEO}\nBoth videos were generated from the prompt: '
                             f'"{prompt}"\nJudge them by this question: {self.question}\n'
                             "Which video is better? Answer A or B.")

    def _next_token_logits(self, texts: list[str], clips: list[list[torch.Tensor]]) -> torch.Tensor:
        out = self.vlm.model(**self.vlm.inputs(texts, clips))
        return out.logits[:, -1]

    def score(self, videos: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
        if self.pairwise:
            raise JobError(f"reward `{self.name}` is a pairwise judge (pairwise = true): it compares two videos, "
                           "so use it where pairs are judged (GSB, swap checks) or set pairwise = false")
        clips = [[v] for v in sample_frames(videos, self.frames)]
        logits = self._next_token_logits([self.pointwise_text(p) for p in prompts], clips)
        return {self.name: two_way_probability(logits, self.yes, self.no)}

    @torch.no_grad()
    def compare(self, videos_a: torch.Tensor, videos_b: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """(B,) probability that video A (shown first) is better than video B, per prompt."""
        a = sample_frames(videos_a.to(self.device, torch.float32), self.frames)
        b = sample_frames(videos_b.to(self.device, torch.float32), self.frames)
        step = self.needs.max_batch or len(prompts)
        out = []
        for i in range(0, len(prompts), step):
            texts = [self.pairwise_text(p) for p in prompts[i:i + step]]
            clips = [[x, y] for x, y in zip(a[i:i + step], b[i:i + step])]
            out.append(two_way_probability(self._next_token_logits(texts, clips), self.first, self.second))
        return torch.cat(out).float().cpu()

    def compare_both_orders(self, videos_a: torch.Tensor, videos_b: torch.Tensor,
                            prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(A better) asked as (A, B), P(A better) asked as (B, A)); they agree for a position-fair judge."""
        return self.compare(videos_a, videos_b, prompts), 1 - self.compare(videos_b, videos_a, prompts)


def swap_checked_verdicts(p_ab: torch.Tensor, p_ab_swapped: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """P(A better) asked as (A, B) and as (B, A) -> +1 (A wins), -1 (B wins), or 0 where the two orders
    disagree (ALGORITHMS.md §10) or either answer is within `margin` of a tie."""
    prefers_a = p_ab > 0.5
    consistent = swap_consistent(prefers_a, p_ab_swapped < 0.5)  # asked (B, A), "first" is B
    decided = ((p_ab - 0.5).abs() > margin) & ((p_ab_swapped - 0.5).abs() > margin)
    return torch.where(prefers_a, 1, -1) * (consistent & decided).long()
