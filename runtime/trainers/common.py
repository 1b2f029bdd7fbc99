"""Plumbing every trainer shares: building the policy, the optimiser, resumable loops, saving outputs."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

from runtime.algorithms import flow
from runtime.algorithms.schedule import warmup_lr, warmup_steps
from runtime.context import JobContext, rng_state, set_rng_state
from runtime.errors import JobError
from runtime.models.families import build_policy
from runtime.models.policy import VideoPolicy

from vpolang.atomic import atomic_folder

from .parallel import mean_over_ranks, micro_batches, share
from .updater import DeepSpeedUpdater, TorchUpdater, updater_for

Updater = TorchUpdater | DeepSpeedUpdater

BASE_SEED = 0  # the base model of a spec is always the same weights, whichever stage builds it


def unsupported(ctx: JobContext, field: str, why: str) -> None:
    """An option this runtime cannot honour stops the job naming it, rather than being ignored."""
    raise JobError(f"`{field}` is not supported by this runtime yet; {why}")


def load_policy(ctx: JobContext, field: str = "policy", trainable: bool = True) -> VideoPolicy:
    """The policy a stage starts from: the base model, plus the weights of the stage it refers to."""
    cfg = ctx.config
    ref = getattr(cfg, field)  # a model or stage reference (a dict; a stage's names its input slot)
    try:
        policy = build_policy(cfg.model.model_dump(), ctx.device, seed=BASE_SEED, recipe_dir=ctx.recipe_dir)
    except FileNotFoundError as exc:
        raise JobError(str(exc)) from exc
    if ref.get("input"):
        policy.load(ctx.input_path(ref["input"]))
    if trainable and cfg.lora_rank:
        policy.add_lora(int(cfg.lora_rank))
    if trainable and ctx.execution.checkpointing:  # the plan's block: the recipe's choice or the planner's
        policy.transformer.enable_gradient_checkpointing()
    if trainable and ctx.execution.sequence_parallel > 1:
        split_sequence(ctx, policy.transformer)
    if trainable and cfg.compile:
        compile_transformer(ctx, policy.transformer)
    if not trainable:
        policy.requires_grad_(False)
    return policy


def split_sequence(ctx: JobContext, transformer: torch.nn.Module) -> None:
    """Sequence parallelism as the plan's block says (runtime/parallel/sequence.py); every rank calls it."""
    from runtime.parallel import sequence

    from .parallel import use_sequence_parallel

    k = ctx.execution.sequence_parallel
    if ctx.config.compile:
        unsupported(ctx, "compile with sequence_parallel", "diffusers' context-parallel hooks are not "
                    "compiled here yet; remove `compile` or set sequence_parallel = 1")
    try:
        sequence.check_supported(transformer, k)
        sequence.enable(transformer, sequence.Layout(ctx.world_size, k, ctx.rank), ctx.device)
    except ValueError as exc:
        unsupported(ctx, f"sequence_parallel = {k}", str(exc))
    use_sequence_parallel(k)
    ctx.log(f"sequence parallelism: {k} ranks split each video's tokens "
            f"({ctx.world_size // k} data-parallel group{'s' if ctx.world_size // k > 1 else ''})")


def compile_transformer(ctx: JobContext, transformer: torch.nn.Module) -> None:
    """Compile in place (state_dict keys unchanged): each repeated block once where the model lists them
    (diffusers' regional compilation: one compile serves every layer), else the whole module."""
    if ctx.execution.zero_stage == 3:
        unsupported(ctx, "compile with zero_stage = 3", "ZeRO-3's parameter hooks break the compiled graphs; "
                    "use zero_stage <= 2 or remove `compile`")
    if getattr(transformer, "_repeated_blocks", None):
        transformer.compile_repeated_blocks()
        ctx.log(f"compiled the transformer's repeated blocks ({', '.join(transformer._repeated_blocks)})")
    else:
        transformer.compile()
        ctx.log("compiled the transformer")


class Stateful(Protocol):
    """Trainer state beyond the weights, optimiser and RNG that a checkpoint must hold for a resumed
    run to equal an uninterrupted one: handed to `Loop(state={name: obj})`, saved as
    `obj.state_dict()` and restored with `obj.load_state_dict(saved)` (torch's protocol)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Ema:
    """Exponential moving average of the trainable weights; the stage's output policy is the average."""

    def __init__(self, policy: VideoPolicy, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in policy.trainable_state().items()}

    @torch.no_grad()
    def update(self, policy: VideoPolicy) -> None:
        for name, param in policy.transformer.named_parameters():
            if name in self.shadow:
                self.shadow[name].mul_(self.decay).add_(param.detach().float().cpu(), alpha=1 - self.decay)

    def apply_to(self, policy: VideoPolicy) -> None:
        state = policy.transformer.state_dict()
        policy.load_trainable_state({k: v.to(state[k].dtype) for k, v in self.shadow.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow = state


class ReferenceState:
    """A reference that moves during training (`reference = refresh(every = K)`) as checkpoint state:
    the frozen copy, or with LoRA the adapter snapshot (empty while it is still the base model)."""

    def __init__(self, policy: VideoPolicy):
        self.policy = policy

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.policy.reference_state() or {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.policy.load_reference_state(state or None)


def policy_from_ref(ctx: JobContext, ref: dict) -> VideoPolicy:
    """A frozen policy for a reference in `against` / `policy` of evaluate and generate jobs."""
    spec = ref["spec"] if ref.get("ref") == "model" else ref["base_model"]
    try:
        policy = build_policy(spec, ctx.device, seed=BASE_SEED, recipe_dir=ctx.recipe_dir)
    except FileNotFoundError as exc:
        raise JobError(str(exc)) from exc
    if ref.get("input"):
        policy.load(ctx.input_path(ref["input"]))
    return policy.requires_grad_(False).eval()


def policy_updater(ctx: JobContext, policy: VideoPolicy) -> Updater:
    """The optimiser of the policy's trainable weights; the policy's forward runs through it (ZeRO-3).
    Create it after the reference is pinned: under ZeRO-3 the weights are partitioned from here on."""
    updater = updater_for(ctx, policy.transformer)
    if updater.forward_module is not policy.transformer:
        policy.run_through(updater.forward_module)
    return updater


def lr_at(step: int, cfg, steps: int = 0) -> float:
    """The learning rate of `step` of a run of `steps`: `warmup` unset (GRPO's default) warms up over a
    quarter of the steps (runtime/algorithms/schedule.py)."""
    return warmup_lr(step, cfg.lr, warmup_steps(getattr(cfg, "warmup", 0), steps))


def step_generator(seed: int, step: int, salt: int = 0) -> torch.Generator:
    """Noise and sampling depend only on (seed, step): a resumed run draws exactly what an
    uninterrupted one would have."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7919 + salt) % (2**63 - 1))


def batch_indices(n: int, batch: int, step: int, seed: int) -> torch.Tensor:
    """The step-th batch of a seeded reshuffle per epoch, without storing permutations."""
    start = step * batch
    out = []
    while len(out) < batch:
        epoch, offset = divmod(start + len(out), n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        take = min(batch - len(out), n - offset)
        out.extend(perm[offset:offset + take].tolist())
    return torch.tensor(out)


def total_steps(cfg: dict, dataset_size: int) -> int:
    if cfg.steps:
        return int(cfg.steps)
    return max(1, -(-cfg.epochs * dataset_size // cfg.batch))


@dataclass
class Loop:
    """A resumable optimisation loop: checkpoints every `checkpoint_every` steps, on a stop request and
    at the end; resumes from the latest valid checkpoint with model, optimiser and RNG state, and the
    trainer's own `state` objects (state_dict()/load_state_dict(): a moving reference, BPGO's priors;
    the EMA joins them when the stage has one)."""

    ctx: JobContext
    policy: VideoPolicy
    updater: Updater
    steps: int
    state: dict[str, Stateful] = field(default_factory=dict)
    ema: Ema | None = None
    validator: Any = None  # validation.Validator with `with validate`

    def __post_init__(self):
        self.state = dict(self.state)
        fields = type(self.ctx.config).model_fields  # reward_model stages have neither ema nor validate
        if "ema" in fields and self.ctx.config.ema:
            if self.updater.zero_stage == 3:
                unsupported(self.ctx, "ema", "ZeRO-3 partitions the weights the average reads; use zero_stage <= 2")
            self.ema = Ema(self.policy, self.ctx.config.ema)
            self.state["ema"] = self.ema
        if "validate" in fields and self.ctx.config.validate is not None:
            from .validation import Validator

            self.validator = Validator(self.ctx, self.policy, self.updater)
            self.state["validation"] = self.validator  # best value and step, validations without gain

    def resume(self) -> int:
        found = self.ctx.checkpoints.latest_valid()
        if found is None:
            return 0
        step, path = found
        saved = self.ctx.checkpoints.load(path)
        with self.updater.full_weights():
            self.policy.load_trainable_state(saved["model"])
        self.updater.load_state_dict(saved["optimizer"])
        set_rng_state(saved["rng"])
        extra = dict(saved.get("extra", {}))
        if "ema" in saved:  # checkpoints before the state objects kept the EMA beside `extra`
            extra.setdefault("ema", saved["ema"])
        for name, obj in self.state.items():
            if name in extra:
                obj.load_state_dict(extra[name])
        self.ctx.log(f"resumed from checkpoint at step {step}")
        return step

    def save(self, step: int) -> None:
        # every rank takes part (ZeRO gathers weights and optimiser partitions); one writes
        with self.updater.full_weights():
            model = self.policy.trainable_state()
        optimizer = self.updater.state_dict()
        if not self.ctx.is_main:
            return
        state: dict[str, Any] = {"model": model, "optimizer": optimizer, "rng": rng_state(), "step": step,
                                 "extra": {name: obj.state_dict() for name, obj in self.state.items()}}
        self.ctx.checkpoints.save(step, state)

    def run(self, step_fn: Callable[[int], dict[str, float]]) -> bool:
        """Calls step_fn(step) for the remaining steps; False when stopped early (to resume later)."""
        cfg = self.ctx.config
        every = cfg.checkpoint_every
        for step in range(self.resume(), self.steps):
            for group in self.updater.param_groups:
                group["lr"] = lr_at(step, cfg, self.steps)
            values = step_fn(step)
            self.ctx.check_finite(values.get("loss", 0.0), step)
            if str(self.ctx.device).startswith("cuda"):  # the high-water mark so far, for `vpo report`/plans
                values["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            if self.ema is not None:
                self.ema.update(self.policy)
            done = step + 1
            validated = self.validator is not None and self.validator.due(done, self.steps)
            if validated:
                values.update(self.validator.run(done))
            if step % cfg.log_every == 0 or step == self.steps - 1 or validated:
                self.ctx.metrics(done, **values)
            if validated and self.validator.should_stop:  # the same decision on every rank
                v = self.validator
                self.ctx.warn(f"stopped early at step {done} of {self.steps}: {v.monitor} did not improve for "
                              f"{v.without_improvement} validations (best {v.best:.4g} at step {v.best_step})")
                break
            if self.ctx.should_stop():  # agreed across ranks: all stop at the same step
                self.save(done)
                return False
            if done % every == 0 and done < self.steps:
                self.save(done)
        if self.validator is not None:
            self.validator.restore_best()  # keep_best: the best validated weights are the output
        if self.ema is not None:
            self.ema.apply_to(self.policy)  # the output is the averaged weights
        return True


def save_policy(ctx: JobContext, policy: VideoPolicy, updater: Updater | None = None) -> None:
    """Every rank calls this (ZeRO-3 gathers the weights); the main rank writes."""
    with updater.full_weights() if updater is not None else contextlib.nullcontext():
        save_output(ctx, "policy", policy.save)


def save_output(ctx: JobContext, name: str, write: Callable[[Path], None]) -> None:
    """Write an output folder whole or not at all: `write` fills a temporary folder that is then renamed
    into place. Only the main rank writes (the ranks hold the same weights)."""
    if not ctx.is_main:
        return
    with atomic_folder(ctx.output_path(name)) as tmp:
        write(tmp)


def encode_cached(policy: VideoPolicy, prompts: list[str], cache: dict[str, Any]):
    """Text conditioning per prompt, computed once (the text encoder is frozen)."""
    from runtime.models.policy import TextCond

    missing = [p for p in dict.fromkeys(prompts) if p not in cache]
    if missing:
        cond = policy.encode_prompts(missing)
        for i, p in enumerate(missing):
            cache[p] = (cond.embeds[i], cond.mask[i])
    return TextCond(torch.stack([cache[p][0] for p in prompts]), torch.stack([cache[p][1] for p in prompts]))


def resolve(ctx: JobContext, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ctx.recipe_dir / p


def real_nll_step(ctx: JobContext, policy, updater: Updater, real, i, cache) -> float:
    """IPO's lambda2: the flow-matching loss on a batch of real videos (its own batch and noise stream),
    back-propagated on its own graph, scaled by `nll_real`."""
    real_prompts, real_latents = real
    loss, _ = weighted_flow_matching_step(ctx, policy, updater, real_latents, real_prompts, None, i, cache, salt=1,
                                          scale=ctx.config.nll_real)
    return loss


def pin_reference(policy: VideoPolicy) -> None:
    """Fix the reference to the policy's weights now, before a resume loads trained weights: the
    reference is otherwise copied at first use, which after a resume would be the resumed weights.
    With LoRA the reference is the base model already."""
    if policy.lora is None:
        policy.refresh_reference()


def weighted_flow_matching_step(ctx: JobContext, policy: VideoPolicy, updater: Updater, latents: torch.Tensor,
                                prompts: list[str], weights: torch.Tensor | None, i: int, cache: dict, salt: int = 0,
                                scale: float = 1.0) -> tuple[float, torch.Tensor]:
    """One step's flow-matching loss (optionally weighted per video) on this rank's share of the global
    batch, back-propagated. The whole batch's indices and noise are drawn on every rank, so each rank's
    rows get what they would get in one process. `salt` gives a second data stream its own batches and
    noise; `scale` multiplies the loss for backward. Returns the rank-averaged loss and the batch's indices."""
    cfg = ctx.config
    idx = batch_indices(len(prompts), cfg.batch, i, cfg.seed + salt)
    gen = step_generator(cfg.seed, i, salt=salt)
    eps = torch.randn((len(idx), *latents.shape[1:]), generator=gen)
    s = flow.sample_sigmas(len(idx), gen, policy.spec["shift"])
    mine = share(ctx, len(idx))
    idx, eps, s = idx[mine], eps[mine].to(latents.device), s[mine].to(latents.device)
    total = 0.0
    for part in micro_batches(ctx, len(idx)):  # gradient accumulation: each pass adds its share of the mean
        rows = idx[part]
        x0 = latents[rows.to(latents.device)]
        text = encode_cached(policy, [prompts[j] for j in rows], cache)
        err = flow.flow_matching_error(policy.velocity(flow.noised(x0, eps[part], s[part]), s[part], text), x0,
                                       eps[part])
        if weights is not None:
            err = err * weights[rows].to(err.device)
        loss = err.sum() / len(idx)
        updater.backward(loss * scale if scale != 1.0 else loss)
        total += float(loss.detach())
    return mean_over_ranks(total), idx
