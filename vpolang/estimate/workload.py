"""What each job kind does, counted in passes over one video: per optimiser step for training jobs, per
wave of videos (one per GPU) for inference jobs, plus one-off setup work (encoding a dataset).

Also what each kind keeps on a GPU at its peak (activation graphs, frozen models, buffers); memory.py
turns that into bytes and flops.py turns passes into FLOPs. The passes follow the runtime's trainers
and ALGORITHMS.md:
- sft: one fwd+bwd per video; the dataset is VAE- and text-encoded once up front (and scored once when
  the loss is reward-weighted).
- rwr: like sft; the rewards are computed once per dataset video.
- kto: fwd+bwd per video and a reference forward (§8). Under gradient accumulation (more than one
  micro-batch per step) the reference point needs every row's implicit reward before any row's loss,
  so the trainer runs a no-grad forward of the policy over the batch first: one more pass per video.
- dpo: fwd+bwd on winner and loser, reference forward on both (§6). `decoupled` is the runtime's
  stashed schedule (§7): no extra forward, one branch's graph alive at a time, the winner's gradient
  stashed, 1.04x step time as measured. Online pairs add, per prompt, n sampled candidates (T
  no-grad forwards each), their VAE decode and the judges.
- `with validate` (any of the above but reward_model): every `every` steps and after the last, each
  held-out prompt sampled once (T no-grad forwards), decoded and scored by the listed metrics.
- grpo: rollouts of group_size videos per prompt (T no-grad forwards each, twice under guidance),
  their decode and rewards; then a fwd+bwd on round(train_fraction x (T - 1)) of the steps of every
  video (the last step is deterministic), with a reference forward at each when kl > 0 (§1). With
  `with window` (MixGRPO) only the window's `size` SDE steps are trained, and every rollout of a step
  shares them (one pass per window step). Under `reward_as = win_rate` a pairwise judge reads each
  video 2 (G - 1) times (every pair of a group, both orders). A window with `shared_noise` samples a
  group's ODE prefix (the steps before its window) once, not G times. CPS, GRPO-Guard and the velocity KL
  cost what the default does. `objective = nft` (DiffusionNFT) trains round(train_fraction x T) of
  the T levels per video (no deterministic last step: it noises the clean sample again) and adds one
  no-grad forward of the sampling policy at each (v_old, once per batch), with no log-probs.
- reward_model: a VLM fwd+bwd per video (two per pair).
- generate / evaluate: T forwards per video (twice under guidance), VAE decode, metrics or scorers.
- judge: one VLM pass per video and judge. synthesize: pixel-space corruptions on the CPU, no GPU work.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .arch import Clip, VideoDiT, VisionLanguage
from .batch import per_gpu_samples, per_gpu_videos
from .calibration import DPO_DECOUPLED_TIME_FACTOR
from .flops import latent_elements
from .memory import TrainingPeak, lora_params


@dataclass(frozen=True)
class Scorer:
    """A model run on videos to score or judge them: a reward model, a VLM judge, a vision backbone."""

    name: str
    model: VisionLanguage
    frames: int = 8
    calls_per_video: float = 1.0  # a pairwise judge asked both ways (swap check) reads each video twice


@dataclass(frozen=True)
class Work:
    """Passes, each over one video of the job's clip (scorers: over their own frames)."""

    train: float = 0.0  # policy forward + backward
    sample: float = 0.0  # policy no-grad forwards (rollouts, generation)
    reference: float = 0.0  # frozen reference no-grad forwards
    recompute: float = 0.0  # no-grad forwards of the trained policy (KTO's reference point, accumulated)
    prior: float = 0.0  # no-grad forwards of BPGO's prior policy
    vae_encode: float = 0.0
    vae_decode: float = 0.0
    prompts: float = 0.0  # text-encoder passes
    sample_batch: float = 1.0  # videos one GPU's sampling forward takes at once (GRPO: all its rollouts)
    update_batch: float | None = None  # videos per training/reference pass, if not the micro-batch
    scored: tuple[tuple[Scorer, float], ...] = ()  # (scorer, videos)
    scorer_train: tuple[tuple[Scorer, float], ...] = ()  # (trained VLM, videos through fwd+bwd)


def _scored(scorers: tuple[Scorer, ...], videos: float) -> tuple[tuple[Scorer, float], ...]:
    return tuple((s, videos * s.calls_per_video) for s in scorers)


def _guidance_passes(guidance: float) -> int:
    """Classifier-free guidance evaluates the model with and without the prompt."""
    return 2 if guidance != 1.0 else 1


# ---- diffusion-transformer training -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DiTTraining:
    """Fields every job that trains the diffusion transformer shares."""

    clip: Clip
    batch: int  # global, per optimiser step: videos (sft, rwr, kto), pairs (dpo), prompts (grpo)
    steps: int
    lora_rank: int = 0
    checkpointing: bool | None = None  # None: switched on only when the job would not fit otherwise
    micro_batch: int | None = None  # None: the largest that fits; else the recipe's (checked to fit)
    compiled: bool = False  # `compile = true`: the trained transformer's passes run compiled
    dataset: int = 0  # items encoded once before training
    scorers: tuple[Scorer, ...] = ()  # models scoring each dataset video once (reward weights)
    validation: Work = Work()  # `with validate`: every validation's sampling and scoring, over the job

    kind = "train"
    trains = "dit"
    videos_per_item = 1
    needs_reference = False
    train_time_factor = 1.0

    def per_gpu(self, world: int) -> int:
        return per_gpu_samples(self.batch, world)

    def setup_work(self) -> Work:
        videos = self.dataset * self.videos_per_item
        return Work(vae_encode=videos, prompts=self.dataset, scored=_scored(self.scorers, videos))

    def step_work(self, world: int) -> Work:
        return Work(train=self.batch)

    def with_accumulation(self, work: Work, grad_accum: int) -> Work:
        """A step's passes under the execution block's accumulation (most kinds: unchanged)."""
        return work

    def total_steps(self, world: int) -> int:
        return self.steps

    def training_peak(self, micro_batch: int, checkpointing: bool) -> TrainingPeak:
        return TrainingPeak(micro_batch=micro_batch, checkpointing=checkpointing)

    def resident_scorers(self) -> tuple[Scorer, ...]:
        return ()

    def frozen_bytes(self, arch: VideoDiT, per_gpu: int) -> dict[str, float]:
        """Frozen models and buffers beside the trained transformer (VAEs usually run in fp32)."""
        reference = self.needs_reference and not self.lora_rank  # LoRA: the base with adapters off
        return {"reference": arch.params * arch.weight_bytes if reference else 0.0,
                "vae": arch.vae_params * 4.0,
                # validation's model rewards stay loaded between validations
                "scorers": scorer_weight_bytes(self.resident_scorers() + tuple(s for s, _ in self.validation.scored))}


def scorer_weight_bytes(scorers: tuple[Scorer, ...]) -> float:
    unique = {s.name: s.model for s in scorers}
    return float(sum(m.params * m.weight_bytes for m in unique.values()))


@dataclass(frozen=True, kw_only=True)
class Sft(DiTTraining):
    kind = "sft"


@dataclass(frozen=True, kw_only=True)
class Rwr(DiTTraining):
    kind = "rwr"


@dataclass(frozen=True, kw_only=True)
class Kto(DiTTraining):
    nll_real: bool = False  # a flow-matching loss on a real video per sample

    kind = "kto"
    needs_reference = True

    def step_work(self, world: int) -> Work:
        return Work(train=self.batch * (2 if self.nll_real else 1), reference=self.batch)

    def with_accumulation(self, work: Work, grad_accum: int) -> Work:
        """runtime/trainers/kto.py: with several micro-batches, a no-grad pass over the batch first."""
        return replace(work, recompute=self.batch) if grad_accum > 1 else work


@dataclass(frozen=True)
class OnlinePairs:
    """OnlineVPO: candidates sampled from the current policy each step, judged, best vs worst."""

    candidates: int
    sample_steps: int
    judges: tuple[Scorer, ...]
    guidance: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Dpo(DiTTraining):
    backward: str = "standard"  # or decoupled
    nll_real: bool = False
    online: OnlinePairs | None = None
    refresh: bool = False  # reference = refresh(every = K)

    kind = "dpo"
    videos_per_item = 2
    needs_reference = True

    def __post_init__(self):
        if self.backward not in ("standard", "decoupled"):
            raise ValueError(f"DPO backward is standard or decoupled, got {self.backward!r}")

    @property
    def train_time_factor(self) -> float:
        return DPO_DECOUPLED_TIME_FACTOR if self.backward == "decoupled" else 1.0

    def setup_work(self) -> Work:
        return Work() if self.online else super().setup_work()

    def step_work(self, world: int) -> Work:
        pairs = self.batch
        work = Work(train=pairs * (3 if self.nll_real else 2), reference=2 * pairs)
        if not self.online:
            return work
        videos = pairs * self.online.candidates
        passes = self.online.sample_steps * _guidance_passes(self.online.guidance)
        return Work(train=work.train, reference=work.reference, sample=videos * passes,
                    vae_decode=videos, prompts=pairs, scored=_scored(self.online.judges, videos))

    def training_peak(self, micro_batch: int, checkpointing: bool) -> TrainingPeak:
        decoupled = self.backward == "decoupled"
        return TrainingPeak(micro_batch=micro_batch, branches=1 if decoupled else 2, checkpointing=checkpointing,
                            stash_gradient=decoupled)

    def resident_scorers(self) -> tuple[Scorer, ...]:
        return self.online.judges if self.online else ()

    def frozen_bytes(self, arch: VideoDiT, per_gpu: int) -> dict[str, float]:
        """With LoRA a refreshed reference is the base plus a snapshot of the adapters (their size)."""
        parts = super().frozen_bytes(arch, per_gpu)
        if self.refresh and self.lora_rank:
            adapters = lora_params(arch.layers, arch.hidden, arch.lora_targets_per_layer, self.lora_rank)
            parts["reference_adapters"] = adapters * arch.weight_bytes
        return parts


@dataclass(frozen=True, kw_only=True)
class Grpo(DiTTraining):
    group_size: int
    sample_steps: int
    train_fraction: float = 0.6
    kl: float = 0.0
    guidance: float = 1.0
    updates_per_batch: int = 1
    rewards: tuple[Scorer, ...] = ()  # every model scoring each rollout (rewards, gates, ViPO's backbone)
    prior_samples: int = 0  # BPGO with a prior policy: videos it samples per new prompt (runtime: 4)
    prompt_pool: int = 0  # distinct prompts, which bounds the prior's sampling
    window: int = 0  # `with window`: its SDE steps, the only ones trained (0: train_fraction of T - 1)
    nft: bool = False  # objective = nft: flow matching on the clean samples at train_fraction of T levels
    prefix_steps: float = 0.0  # window + shared_noise: mean ODE steps a group shares before its window

    kind = "grpo"

    @property
    def needs_reference(self) -> bool:
        return self.kl > 0

    @property
    def videos(self) -> int:
        return self.batch * self.group_size

    @property
    def trained_steps(self) -> int:
        if self.window:
            return self.window
        levels = self.sample_steps if self.nft else self.sample_steps - 1
        return max(1, round(self.train_fraction * levels))

    def per_gpu(self, world: int) -> int:
        return per_gpu_videos(self.batch, self.group_size, world)

    def setup_work(self) -> Work:
        return Work()

    def step_work(self, world: int) -> Work:
        cfg = _guidance_passes(self.guidance)
        updates = self.videos * self.trained_steps * cfg * self.updates_per_batch
        prior = self._prior_videos_per_step()
        rollouts = self.videos + prior
        old_velocity = self.videos * self.trained_steps if self.nft else 0.0  # DiffusionNFT's v_old, once
        return Work(train=updates, reference=(updates if self.kl > 0 else 0.0) + old_velocity,
                    sample=(self.videos * self.sample_steps - self._shared_prefix_rows()) * cfg,
                    prior=prior * self.sample_steps,
                    vae_decode=rollouts, prompts=self.batch, scored=_scored(self.rewards, rollouts),
                    sample_batch=self.per_gpu(world), update_batch=self._rows_per_update(self.per_gpu(world)))

    def _shared_prefix_rows(self) -> float:
        """Rollout rows whose prefix forwards a group shares (each group computes its prefix once)."""
        return self.videos * (1 - 1 / self.group_size) * self.prefix_steps

    def _rows_per_update(self, rollouts: int) -> float:
        """The trainer recomputes each rollout's drawn timesteps, one pass per distinct timestep: the
        rollouts that drew the same one share it. Expected distinct of K among n draws: K(1-(1-1/K)^n).
        A window's steps are every rollout's, and DiffusionNFT's passes take every row at its own level:
        each pass takes all of them."""
        if self.window or self.nft:
            return float(rollouts)
        k = max(1, self.sample_steps - 1)
        return rollouts / (k * (1 - (1 - 1 / k) ** rollouts))

    def _prior_videos_per_step(self) -> float:
        """Each distinct prompt is sampled once by the prior: not linear in steps once the pool runs out."""
        if not self.prior_samples:
            return 0.0
        new_prompts = self.steps * self.batch
        if self.prompt_pool:
            new_prompts = min(new_prompts, self.prompt_pool)
        return new_prompts * self.prior_samples / self.steps

    def training_peak(self, micro_batch: int, checkpointing: bool) -> TrainingPeak:
        # the guided velocity back-propagates through both the conditional and unconditional pass
        return TrainingPeak(micro_batch=micro_batch, branches=_guidance_passes(self.guidance),
                            checkpointing=checkpointing)

    def resident_scorers(self) -> tuple[Scorer, ...]:
        return self.rewards

    def frozen_bytes(self, arch: VideoDiT, per_gpu: int) -> dict[str, float]:
        """Adds the rollouts kept for the update (fp32 states x_0..x_T and means, per video on this GPU)
        and, for BPGO with a prior policy, that policy's weights."""
        parts = super().frozen_bytes(arch, per_gpu)
        parts["rollouts"] = per_gpu * (2 * self.sample_steps + 1) * latent_elements(arch, self.clip) * 4.0
        parts["prior_policy"] = arch.params * arch.weight_bytes if self.prior_samples else 0.0
        return parts


# ---- reward-model training ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class RewardModel:
    """A VLM trained on preference pairs (two videos each) and/or pointwise labels (one video each)."""

    model: VisionLanguage
    frames: int
    batch: int
    steps: int
    videos_per_item: float = 2.0  # 2 for pairs, 1 for labels; a mixture in between
    lora_rank: int = 0
    checkpointing: bool | None = None
    micro_batch: int | None = None

    kind = "reward_model"
    trains = "scorer"
    needs_reference = False
    train_time_factor = 1.0
    scorers = ()

    @property
    def scorer(self) -> Scorer:
        return Scorer("backbone", self.model, self.frames)

    def per_gpu(self, world: int) -> int:
        return per_gpu_samples(self.batch, world)

    def setup_work(self) -> Work:
        return Work()

    def step_work(self, world: int) -> Work:
        return Work(scorer_train=((self.scorer, self.batch * self.videos_per_item),))

    def total_steps(self, world: int) -> int:
        return self.steps

    def training_peak(self, micro_batch: int, checkpointing: bool) -> TrainingPeak:
        # a pair's loss needs both videos' scores before its backward
        return TrainingPeak(micro_batch=micro_batch, branches=math.ceil(self.videos_per_item),
                            checkpointing=checkpointing)

    def resident_scorers(self) -> tuple[Scorer, ...]:
        return ()


# ---- inference ---------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Inference:
    """A job that processes `videos` independent videos, spread evenly over the GPUs in waves."""

    videos: int
    scorers: tuple[Scorer, ...] = ()

    kind = "inference"
    trains = None
    uses_policy = False

    def per_video(self) -> Work:
        return Work(scored=_scored(self.scorers, 1))

    def setup_work(self) -> Work:
        return Work()

    def total_steps(self, world: int) -> int:
        return max(1, math.ceil(self.videos / world))

    def step_work(self, world: int) -> Work:
        return _scale(self.per_video(), world)


@dataclass(frozen=True, kw_only=True)
class Generate(Inference):
    clip: Clip
    sample_steps: int
    guidance: float = 1.0
    per_prompt: int = 1

    kind = "generate"
    uses_policy = True

    def per_video(self) -> Work:
        return Work(sample=self.sample_steps * _guidance_passes(self.guidance), vae_decode=1,
                    prompts=1 / self.per_prompt, scored=_scored(self.scorers, 1))


@dataclass(frozen=True, kw_only=True)
class Evaluate(Generate):
    """Samples from each compared policy (`videos` counts all of them) and scores every sample."""

    kind = "evaluate"


@dataclass(frozen=True, kw_only=True)
class Judge(Inference):
    kind = "judge"


@dataclass(frozen=True, kw_only=True)
class Synthesize(Inference):
    kind = "synthesize"

    def per_video(self) -> Work:
        return Work()


def _scale(work: Work, k: float) -> Work:
    return Work(train=work.train * k, sample=work.sample * k, reference=work.reference * k, prior=work.prior * k,
                vae_encode=work.vae_encode * k, vae_decode=work.vae_decode * k, prompts=work.prompts * k,
                scored=tuple((s, v * k) for s, v in work.scored),
                scorer_train=tuple((s, v * k) for s, v in work.scorer_train))


TRAINING_KINDS = {cls.kind: cls for cls in (Sft, Rwr, Kto, Dpo, Grpo, RewardModel)}
INFERENCE_KINDS = {cls.kind: cls for cls in (Generate, Evaluate, Judge, Synthesize)}


def validation_work(prompts: int, validations: int, sample_steps: int, scorers: tuple[Scorer, ...]) -> Work:
    """All of a job's validations: each samples every held-out prompt once with ODE sampling (no guidance)."""
    per_video = Work(sample=sample_steps, vae_decode=1, prompts=1, scored=_scored(scorers, 1))
    return _scale(per_video, prompts * validations)
