"""Reward-model training (VideoAlign, IPO's critic): a vision-language backbone with one linear head
per dimension, trained with Bradley-Terry on pairs (per-dimension verdicts where the pairs file gives
them, ties as half a win under `bt_ties`) and a pointwise loss on labels, on one logit scale.

The output folder is a saved VideoRewardModel: recipes use it as a reward (`rm.vq`, `rm.overall`) and
as an on-policy judge. Data parallel like the policy trainers: every rank draws the global batch and
trains on its share; gradients are averaged."""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from vpolang.schema.entities import VisionLanguage

from runtime.algorithms.reward_model import (label_targets, pair_accuracy, pairwise_loss, pointwise_loss,
                                             verdict_target)
from runtime.context import JobContext
from runtime.data.labels import LabelSet, read_labels_file
from runtime.data.pairs import PairSet, read_pairs_jsonl
from runtime.data.paths import resolve_path
from runtime.errors import JobError
from runtime.rewards.vlm import check_family
from runtime.rewards.video_reward_model import VideoRewardModel

from .common import Loop, batch_indices, save_output
from .parallel import mean_over_ranks, micro_batches, share
from .updater import updater_for

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]  # the language model's attention (Qwen2-VL names)


@dataclass
class TrainableRewardModel:
    """The reward model behind the interface Loop uses for policies."""

    model: VideoRewardModel

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)


def backbone_folder(ctx: JobContext):
    spec = VisionLanguage.model_validate(ctx.config.backbone["spec"])  # typed: the schema's defaults
    check_family(spec.family, ctx.job.stage)
    if not spec.path:
        raise JobError(f"the backbone `{ctx.config.backbone['name']}` needs `path`: a local folder "
                       "with a Qwen2-VL-family or Llava-layout (LLaVA, VILA) model saved in transformers format")
    folder = resolve_path(spec.path, ctx.recipe_dir)
    if not folder.is_dir():
        raise JobError(f"backbone folder {folder} does not exist")
    return folder


def read_data(ctx: JobContext, frames: int) -> tuple[PairSet | None, torch.Tensor | None, LabelSet | None]:
    """Pairs with their (N, H) targets, and labels; videos read at the stage's frames and resolution."""
    cfg = ctx.config
    pairs = targets = labels = None
    if cfg.pairs:
        pairs = read_pairs_jsonl(resolve_path(cfg.pairs.path, ctx.recipe_dir), frames, cfg.resolution,
                                 keep_ties=cfg.loss == "bt_ties")
        try:
            targets = torch.tensor([[verdict_target(meta.get(dim), tie) for dim in cfg.dims]
                                    for meta, tie in zip(pairs.meta, pairs.ties)])
        except ValueError as exc:
            raise JobError(f"{cfg.pairs.path}: {exc}") from exc
    if cfg.labels:
        labels = read_labels_file(cfg.labels, ctx.recipe_dir, frames, cfg.resolution)
    return pairs, targets, labels


def run(ctx: JobContext) -> None:
    cfg = ctx.config
    ctx.seed_everything()
    frames = cfg.frames
    pairs, targets, labels = read_data(ctx, frames)
    model = VideoRewardModel.from_backbone(backbone_folder(ctx), cfg.dims, frames=frames, seed=cfg.seed)
    if cfg.lora_rank:
        add_lora(model, int(cfg.lora_rank))
    model.to(ctx.device).train()
    if ctx.execution.checkpointing:  # the plan's block: nothing fit without it
        # non-reentrant: recomputes correctly when the inputs need no grad (a frozen backbone under LoRA)
        model.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainable = TrainableRewardModel(model)
    updater = updater_for(ctx, model)
    runner = updater.forward_module  # through the engine: ZeRO-3 gathers weights there
    largest = max(len(pairs) if pairs else 0, len(labels) if labels else 0)
    steps = max(1, cfg.epochs * math.ceil(largest / cfg.batch))
    label_y = label_targets(labels.labels) if labels else None
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if torch.device(ctx.device).type == "cuda"
                else nullcontext())

    def scores(videos: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        with autocast:
            out = runner(videos.to(ctx.device), prompts)
        return torch.stack([out[d] for d in cfg.dims], 1)  # (N, H)

    def pair_pass(idx: torch.Tensor, part: slice, weight: float):
        """Scores of a micro-batch of pairs; back-propagates its share of the batch's pair loss."""
        rows = idx[part]
        prompts = [pairs.prompts[j] for j in rows]
        both = scores(torch.cat([pairs.chosen[rows], pairs.rejected[rows]]), prompts + prompts)
        r_w, r_l = both[:len(rows)], both[len(rows):]
        part_loss = pairwise_loss(r_w, r_l, targets[rows].to(both.device), ties=cfg.loss == "bt_ties")
        updater.backward(part_loss * weight)
        return r_w.detach(), r_l.detach(), float(part_loss.detach()) * weight

    def label_pass(idx: torch.Tensor, part: slice, weight: float) -> float:
        rows = idx[part]
        r = scores(labels.videos[rows], [labels.prompts[j] for j in rows])
        part_loss = pointwise_loss(r, label_y[rows].to(r.device))
        updater.backward(part_loss * weight)
        return float(part_loss.detach()) * weight

    def step(i: int) -> dict[str, float]:
        """Gradient accumulation over the execution block's micro-batches: each pass back-propagates its
        share of the batch's mean loss (pairs without ties: its share of the decided verdicts)."""
        values, loss = {}, 0.0
        if pairs is not None:
            idx = batch_indices(len(pairs), cfg.batch, i, cfg.seed)[share(ctx, cfg.batch)]
            t = targets[idx]
            counts = torch.ones_like(t) if cfg.loss == "bt_ties" else (t != 0.5).float()
            total = float(counts.sum().clamp(min=1))
            passes = [pair_pass(idx, part, float(counts[part].sum()) / total) for part in micro_batches(ctx, len(idx))]
            r_w, r_l = torch.cat([p[0] for p in passes]), torch.cat([p[1] for p in passes])
            pair_loss = sum(p[2] for p in passes)
            loss += pair_loss
            values.update(pair_loss=mean_over_ranks(pair_loss),
                          accuracy=mean_over_ranks(pair_accuracy(r_w, r_l, t.to(r_w.device))))
        if labels is not None:
            idx = batch_indices(len(labels), cfg.batch, i, cfg.seed + 1)[share(ctx, cfg.batch)]
            label_loss = sum(label_pass(idx, part, (part.stop - part.start) / len(idx))
                             for part in micro_batches(ctx, len(idx)))
            loss += label_loss
            values["label_loss"] = mean_over_ranks(label_loss)
        values["loss"] = mean_over_ranks(loss)
        values["grad_norm"] = updater.step()
        return values

    if Loop(ctx, trainable, updater, steps).run(step):
        if pairs is not None:
            ctx.log(f"training-pair accuracy after training: {final_accuracy(model, pairs, targets, scores):.3f}")
        with updater.full_weights():
            if cfg.lora_rank:
                merge_lora(model)  # the saved model is a plain backbone: readers need no peft
            save_output(ctx, "reward_model", model.to("cpu").save)


def add_lora(model: VideoRewardModel, rank: int) -> None:
    """LoRA on the language model's attention projections; the backbone's own weights freeze, the heads
    stay trainable."""
    from peft import LoraConfig, get_peft_model

    model.backbone.requires_grad_(False)
    wrapped = get_peft_model(model.backbone, LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0,
                                                        target_modules=LORA_TARGETS))
    model.backbone = model.vlm.model = wrapped


def merge_lora(model: VideoRewardModel) -> None:
    merged = model.backbone.merge_and_unload()
    model.backbone = model.vlm.model = merged


@torch.no_grad()
def final_accuracy(model: VideoRewardModel, pairs: PairSet, targets: torch.Tensor, scores) -> float:
    model.eval()
    r_w = torch.cat([scores(pairs.chosen[i:i + 8], pairs.prompts[i:i + 8]) for i in range(0, len(pairs), 8)])
    r_l = torch.cat([scores(pairs.rejected[i:i + 8], pairs.prompts[i:i + 8]) for i in range(0, len(pairs), 8)])
    return pair_accuracy(r_w.cpu(), r_l.cpu(), targets)


run.distributed = True  # data parallel: see parallel.py
