"""In-training validation (`with validate { ... }` on a training stage), called by the shared Loop.

Every `every` steps and after the last, the held-out prompts are sampled with the same starting noise
each time (ODE sampling: the samples, hence the scores, are a function of the weights alone), scored by
each listed metric and returned as `val/<metric>` for the step's metrics record (and so the report and
the trackers, which also get a grid of the first samples). The validator follows `monitor`: with
`patience` it asks the loop to stop once that many validations in a row did not improve it by
`min_delta`; with `keep_best` it keeps the best validation's weights beside the checkpoints and hands
them back at the end, so they become the stage's output. Its state (best value and step, validations
without improvement) travels in the loop's checkpoints: a resumed job decides as an uninterrupted one.

Every rank runs the same validation (same prompts, same noise): under ZeRO-3 the forward needs all of
them, and every rank then takes the same stop decision without a message."""
from __future__ import annotations

from typing import Any

import torch

from runtime.context import JobContext
from runtime.data.sources import load_prompts
from runtime.models.policy import VideoPolicy
from runtime.models.sampler import sample
from runtime.rewards.registry import score_reward

from vpolang.atomic import atomic_path

from .evaluate import metric_names

NOISE_SALT = 424_242  # the validation noise stream, apart from the training noise of the same seed
SHOWN_SAMPLES = 4  # videos in the trackers' sample grid
BATCH = 8


class Validator:
    def __init__(self, ctx: JobContext, policy: VideoPolicy, updater):
        self.ctx, self.policy, self.updater = ctx, policy, updater
        self.cfg = ctx.config.validate.model_dump()  # the plan's typed `validate`, read as plain values
        self.prompts = load_prompts(self.cfg["prompts"], ctx.recipe_dir)
        self.metrics = [m for ref in self.cfg["metrics"] for m in metric_names(ref)]
        self.monitor = "val/" + metric_names(self.cfg["monitor"])[0][0]
        self.best: float | None = None
        self.best_step: int | None = None
        self.without_improvement = 0
        self.best_path = ctx.dir.root / "validation_best.pt"

    # ---- when
    def due(self, done: int, steps: int) -> bool:
        return done % self.cfg["every"] == 0 or done == steps

    @property
    def should_stop(self) -> bool:
        patience = self.cfg.get("patience")
        return bool(patience) and self.without_improvement >= patience

    # ---- what
    @torch.no_grad()
    def run(self, step: int) -> dict[str, float]:
        videos = self.samples()
        values = {f"val/{name}": float(score_reward(ref, videos, self.prompts, self.ctx).float().mean())
                  for name, ref in self.metrics}
        self.ctx.track_video(step, "val/samples", videos[:SHOWN_SAMPLES])
        self._follow(step, values[self.monitor])
        return values

    def samples(self) -> torch.Tensor:
        cfg, policy = self.ctx.config, self.policy
        shape = policy.latent_shape(cfg.frames, *cfg.resolution)
        noise = torch.randn((len(self.prompts), *shape), generator=torch.Generator().manual_seed(cfg.seed + NOISE_SALT))
        training = policy.transformer.training
        policy.eval()
        out = []
        try:
            for i in range(0, len(self.prompts), BATCH):
                text = policy.encode_prompts(self.prompts[i:i + BATCH])
                latents = sample(policy, text, noise[i:i + BATCH].to(self.ctx.device), self.cfg["sample_steps"]).final
                out.append(policy.decode(latents).float().cpu())
        finally:
            if training:
                policy.train()
        return torch.cat(out)

    def _follow(self, step: int, value: float) -> None:
        sign = 1.0 if self.cfg["goal"] == "max" else -1.0
        if self.best is None or sign * (value - self.best) > self.cfg["min_delta"]:
            self.best, self.best_step, self.without_improvement = value, step, 0
            if self.cfg["keep_best"]:
                self._save_best()
        else:
            self.without_improvement += 1

    # ---- the best weights
    def _save_best(self) -> None:
        with self.updater.full_weights():  # every rank takes part (ZeRO); one writes
            state = {k: v.detach().cpu().clone() for k, v in self.policy.trainable_state().items()}
        if self.ctx.is_main:
            with atomic_path(self.best_path) as tmp:
                torch.save({"step": self.best_step, "model": state}, tmp)

    def restore_best(self) -> None:
        """With keep_best: the best validation's weights into the policy (the stage's output)."""
        if not self.cfg["keep_best"] or self.best_step is None:
            return
        saved = torch.load(self.best_path, map_location="cpu", weights_only=True)
        with self.updater.full_weights():
            self.policy.load_trainable_state(saved["model"])
        self.ctx.log(f"the output is the best validated weights: step {saved['step']}, {self.monitor} {self.best:.4g}")

    # ---- resume
    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "without_improvement": self.without_improvement}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_step = state["best"], state["best_step"]
        self.without_improvement = state["without_improvement"]
