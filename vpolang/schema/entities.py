"""Schemas of the things stages use: models, datasets, pair sources, rewards, schedules, clusters."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from .. import safety

from .base import (EnvName, GiB, PluginEntry, PathText, AnyReward, Backbone, Count, Policy, PositiveInt, Probability, Resolution, Schema,
                   Seconds, ScalarReward, Timeout, Url, fail, word_or_object)

# ---- models ----------------------------------------------------------------------------------------
Family = Literal["wan", "wan22", "cogvideox", "hunyuan", "ltx", "shapes"]


class VideoDiffusion(Schema):
    """A text-to-video diffusion transformer (diffusers layout) and the sizes the planner needs."""

    summary = "a text-to-video diffusion model"
    kind: Literal["video_diffusion"] = "video_diffusion"
    family: Family = Field(description="adapter family: how to load, condition and sample the model")
    path: PathText | None = Field(None, description="local folder in the diffusers pipeline layout")
    dtype: Literal["bf16", "fp16", "fp32"] = Field("bf16", description="weights and compute precision")
    prediction: Literal["velocity", "epsilon"] = Field("velocity", description="what the network predicts")
    shift: float = Field(3.0, gt=0, description="flow-matching timestep shift k")
    params: Count = Field(description="transformer parameters")
    layers: PositiveInt
    hidden: PositiveInt = Field(description="transformer width")
    heads: PositiveInt
    ffn: PositiveInt = Field(description="feed-forward width")
    patch: list[PositiveInt] = Field(description="patch size (t, h, w) in latent cells")
    vae_stride: list[PositiveInt] = Field(description="VAE compression (t, h, w); [1,1,1] in pixel space")
    latent_channels: PositiveInt
    text_dim: PositiveInt = Field(description="text-encoder output width")
    text_len: PositiveInt = Field(512, description="text tokens attended to")
    text_encoder_params: Count = Field(0, description="parameters of the frozen text encoder")
    vae_params: Count = Field(0, description="parameters of the frozen VAE")
    resolution: Resolution = Field(description="default training and sampling resolution")
    frames: PositiveInt = Field(le=10_000, description="default number of frames")
    fps: PositiveInt = Field(16, le=1000)
    sample_steps: PositiveInt = Field(50, le=10_000, description="default sampler steps for rollouts and evaluation")
    guidance_scale: float = Field(1.0, ge=1, le=100, description="default classifier-free guidance scale of "
                                  "evaluation, on-policy and online candidates (1: off)")
    negative_prompt: str = Field("", max_length=10_000, description="default unconditional text of guidance")

    @model_validator(mode="after")
    def _triples(self):
        for name in ("patch", "vae_stride"):
            if len(getattr(self, name)) != 3:
                raise fail("vpo_rule", f"`{name}` needs three numbers (t, h, w)", field=name)
        return self


class VisionLanguage(Schema):
    """A vision-language model used as a judge, critic or reward-model backbone."""

    summary = "a vision-language (judge / critic backbone) model"
    kind: Literal["vision_language"] = "vision_language"
    family: Literal["qwen2_vl", "qwen25_vl", "vila", "llava", "tiny"] = Field(description="transformers class family")
    path: PathText | None = Field(None, description="local folder with config, weights and processor")
    dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    params: Count
    layers: PositiveInt
    hidden: PositiveInt
    tokens_per_frame: PositiveInt = Field(64, description="visual tokens per input frame")


ModelSpec = Annotated[Union[VideoDiffusion, VisionLanguage], Field(discriminator="kind")]


# ---- datasets --------------------------------------------------------------------------------------
class Prompts(Schema):
    """Prompts, one per line (.txt) or as {"prompt": ...} records (.jsonl)."""

    summary = "a prompt file"
    positional = ("path",)
    kind: Literal["prompts"] = "prompts"
    path: PathText = Field(description="a .txt or .jsonl file, relative to the recipe")


class Videos(Schema):
    """Videos matched by a glob, with captions from a JSONL file of {"video", "caption"} records."""

    summary = "a captioned video set"
    positional = ("path", "captions")
    kind: Literal["videos"] = "videos"
    path: PathText = Field(description="glob of video files")
    captions: PathText | None = Field(None, description="JSONL of {video, caption}; else a .txt beside each video")


class PairsFile(Schema):
    """Preference pairs: JSONL records {prompt, chosen, rejected} (video paths), optional `tie`."""

    summary = "a JSONL file of preference pairs"
    positional = ("path",)
    kind: Literal["pairs"] = "pairs"
    path: PathText


class LabelsFile(Schema):
    """Pointwise labels: JSONL records {prompt, video, label} with label good | normal | bad or a score."""

    summary = "a JSONL file of pointwise labels"
    positional = ("path",)
    kind: Literal["labels"] = "labels"
    path: PathText


# The shapes world's datasets are generated in memory; their sizes are bounded where they are declared
# (the runtime checks the same bounds before generating). 100,000 clips of 8x16x16 are 2.4 GiB.
MAX_SHAPES_VIDEOS = 100_000
MAX_SHAPES_PROMPTS = 1_000_000


class ShapesVideos(Schema):
    """Procedural captioned videos from the built-in shapes world."""

    summary = "shapes-world captioned videos"
    kind: Literal["shapes_videos"] = "shapes_videos"
    n: PositiveInt = Field(512, le=MAX_SHAPES_VIDEOS, description="number of videos")
    seed: Count = 0


class ShapesPrompts(Schema):
    """Prompts from the built-in shapes world; `test` holds out attribute combinations unseen in `train`."""

    summary = "shapes-world prompts"
    kind: Literal["shapes_prompts"] = "shapes_prompts"
    n: PositiveInt = Field(64, le=MAX_SHAPES_PROMPTS, description="number of prompts")
    split: Literal["train", "test"] = "train"
    seed: Count = 0


PromptSource = Annotated[Union[Prompts, ShapesPrompts], Field(discriminator="kind")]
VideoSource = Annotated[Union[Videos, ShapesVideos], Field(discriminator="kind")]


# ---- synthetic negatives and pair sources ----------------------------------------------------------
class Reverse(Schema):
    """Play the clip backwards (near-static clips are skipped)."""

    kind: Literal["reverse"] = "reverse"
    min_motion: float = Field(0.02, ge=0, description="mean frame difference below which a clip is static")


class Shuffle(Schema):
    """Shuffle frames inside windows; each window shuffled with probability p, at least one changed."""

    kind: Literal["shuffle"] = "shuffle"
    window: Count = Field(4, ge=2, le=10_000, description="frames per window")
    p: Probability = 0.5


class Freeze(Schema):
    """Freeze one frame for 25-50% of the clip, starting between 0.25T and 0.75T."""

    kind: Literal["freeze"] = "freeze"
    p: Probability = Field(0.5, description="probability a clip gets this negative")
    min_fraction: Probability = 0.25
    max_fraction: Probability = 0.5


# A before-validator must wrap the discriminated union from outside to run first (pydantic applies
# Annotated metadata inside-out); hence the nested Annotated below.
Negative = Annotated[Annotated[Union[Reverse, Shuffle, Freeze], Field(discriminator="kind")],
                     word_or_object("reverse", "shuffle", "freeze")]


class Synthetic(Schema):
    """Pairs (real video wins) against temporal corruptions of it, made in pixel space before the VAE."""

    summary = "synthetic temporal negatives"
    positional = ("videos",)
    kind: Literal["synthetic"] = "synthetic"
    videos: VideoSource
    negatives: list[Negative] = Field(default_factory=lambda: [{"kind": "reverse"}], min_length=1)
    seed: Count = 0


class NegativePrompt(Schema):
    """The unconditional text of classifier-free guidance, for every job that samples with it."""

    negative_prompt: str | None = Field(None, max_length=10_000, description="the text guidance steers away "
                                        "from (its unconditional pass); unset: the model's `negative_prompt`")


class Guided(NegativePrompt):
    """Classifier-free guidance of the videos a job samples: v_u + w (v_c - v_u), two passes per step."""

    guidance_scale: float | None = Field(None, ge=1, le=100, description="classifier-free guidance scale w of "
                                         "the sampled videos (1: off, one pass per step); unset: the model's "
                                         "`guidance_scale`")


class OnPolicy(Guided):
    """Generate n candidates per prompt from a policy, judge them, build pairs: before the stage runs."""

    summary = "on-policy pairs generated before the stage"
    positional = ("policy",)
    kind: Literal["on_policy"] = "on_policy"
    policy: Policy
    prompts: PromptSource | None = Field(None, description="defaults to the policy stage's prompts")
    n: Count = Field(4, ge=2, le=64, description="candidates per prompt")
    judges: list[AnyReward] = Field(min_length=1, description="rewards or critics; scores are averaged")
    pick: Literal["best_worst", "all_pairs"] = "best_worst"
    margin: float = Field(0.0, ge=0, description="minimum score gap for a pair")
    swap_check: bool = Field(False, description="ask each judge that compares two videos (vlm_judge) about every "
                             "pair both ways round; keep the pairs both orders give to the winner (pointwise "
                             "scores have no position: consistent by construction)")
    sample_steps: PositiveInt | None = Field(None, le=10_000, description="sampler steps (model default if unset)")
    labels: bool = Field(False, description="also emit good/normal/bad labels by score tercile (for KTO)")


class Online(Guided):
    """OnlineVPO: every step, sample n candidates per prompt from the current policy and judge them."""

    summary = "online pairs sampled from the current policy at every step"
    positional = ("prompts",)
    kind: Literal["online"] = "online"
    prompts: PromptSource
    n: Count = Field(6, ge=2, le=64)
    judges: list[AnyReward] = Field(min_length=1)
    pick: Literal["best_worst", "all_pairs"] = "best_worst"
    margin: float = Field(0.0, ge=0)
    sample_steps: PositiveInt | None = Field(None, le=10_000)


PairLeaf = Annotated[Union[PairsFile, Synthetic, OnPolicy, Online], Field(discriminator="kind")]


class PairMix(Schema):
    """Several pair sources combined with `+`; batches draw from each in proportion to its size."""

    summary = "a mixture of pair sources"
    kind: Literal["mix"] = "mix"
    sources: list[PairLeaf] = Field(min_length=2)


PairSource = Annotated[Union[PairsFile, Synthetic, OnPolicy, Online, PairMix], Field(discriminator="kind")]
LabelSource = Annotated[Union[LabelsFile, OnPolicy], Field(discriminator="kind")]


# ---- rewards ---------------------------------------------------------------------------------------
class WeightFree(Schema):
    """A reward computed from pixels alone (no weights): flicker, smoothness, flow magnitude, ..."""

    summary = "a weight-free video reward"
    kind: Literal["weight_free"] = "weight_free"
    metric: Literal["temporal_flicker", "motion_smoothness", "flow_magnitude", "dynamic_degree", "sharpness"]
    resize: PositiveInt = Field(64, le=4096, description="frames are resized to this side before measuring")


class FeatureConsistency(Schema):
    """Subject/background consistency: cosine similarity of frame features from a frozen backbone."""

    summary = "feature-consistency reward"
    kind: Literal["feature_consistency"] = "feature_consistency"
    target: Literal["subject", "background"] = "subject"
    backbone: PathText = Field("dinov2-small", description="transformers vision backbone (local path or name)")
    path: PathText | None = None


class ShapesReward(Schema):
    """Exact rewards of the built-in shapes world, computed from frames."""

    summary = "an exact shapes-world reward"
    kind: Literal["shapes"] = "shapes"
    metric: Literal["alignment", "smoothness", "flicker", "sharpness"]


class ClipScore(Schema):
    """CLIP text-video similarity averaged over frames (transformers CLIP). Released CLIP-based scorers
    saved in the transformers layout load as they are: PickScore (`logit_scale = true`, the folder of
    PickScore_v1 with the CLIP-H processor files), CLIP ViT-B/L. open_clip checkpoints load through
    `checkpoint` into the model the folder's config describes: HPSv2 (`checkpoint = "HPS_v2.1_compressed.pt"`
    in the folder of laion/CLIP-ViT-H-14-laion2B-s32B-b79K), whose score is the plain cosine."""

    summary = "CLIP text-video score"
    kind: Literal["clip_score"] = "clip_score"
    path: PathText | None = Field(None, description="local CLIP folder")
    frames: PositiveInt = Field(8, le=10_000)
    logit_scale: bool = Field(False, description="multiply the cosine by the model's learned exp(logit_scale), "
                              "as PickScore reports its score")
    checkpoint: PathText | None = Field(None, description="open_clip weights loaded into the model `path`'s "
                                     "config.json describes (HPSv2: HPS_v2.1_compressed.pt); a file in the "
                                     "folder or an absolute path")


class Aesthetic(Schema):
    """An aesthetic predictor over unit-norm CLIP image embeddings, averaged over frames: a linear head
    (`aesthetic_head.safetensors` in the CLIP folder) or LAION's improved predictor, an MLP loaded from its
    released state dict (`head = "sac+logos+ava1-l14-linearMSE.pth"`, on CLIP ViT-L/14)."""

    summary = "aesthetic predictor"
    kind: Literal["aesthetic"] = "aesthetic"
    path: PathText | None = Field(None, description="local CLIP folder")
    frames: PositiveInt = Field(8, le=10_000)
    head: PathText | None = Field(None, description="the predictor's weights: a file in the CLIP folder or an "
                                  "absolute path (.safetensors or a .pth state dict); default "
                                  "aesthetic_head.safetensors")


class VlmJudge(Schema):
    """A vision-language judge: asks a yes/no question, scores P(yes) from the token probabilities."""

    summary = "a VLM judge"
    kind: Literal["vlm_judge"] = "vlm_judge"
    model: Backbone = Field(description="the vision-language model")
    question: str = "Does this video match the prompt and look realistic?"
    frames: PositiveInt = Field(8, le=10_000)
    pairwise: bool = Field(False, description="compares two videos (for GSB and swap checks)")


class VideoRewardModel(Schema):
    """A multi-head video reward model (VideoAlign style): one score per head, `overall` their sum.
    `path` is read by its layout: a folder a vpo reward_model stage wrote (reward_model.json), or the
    released VideoAlign checkpoint as published (model_config.json and checkpoint-<step>/ with model.pth,
    or adapter_model.safetensors and non_lora_state_dict.pth, and tokenizer/); the release holds LoRA
    deltas, merged at load time into the base model at the `model`'s own `path`. Its heads are its
    eval_dim, lower-cased: [vq, mq, ta]."""

    summary = "a multi-head video reward model"
    kind: Literal["video_reward_model"] = "video_reward_model"
    model: Backbone = Field(description="the vision-language backbone")
    heads: list[str] = Field(min_length=1)
    path: PathText | None = None
    frames: PositiveInt = Field(8, le=10_000)


class _Served(Schema):
    """Fields every served reward shares: where it is and how vpo calls it."""

    url: Url = Field(description="the endpoint (http or https)")
    frames: PositiveInt = Field(8, le=1024, description="frames sent per video, evenly spaced")
    concurrency: PositiveInt = Field(1, le=256, description="requests in flight at once")
    timeout: Timeout = Field(60.0, le=86_400, description="how long to wait for one response (`30s`; a plain number is seconds)")
    retries: int = Field(2, ge=0, le=20, description="further tries of a request that failed to connect, timed "
                         "out or got a 5xx/429 answer, with exponential backoff")
    api_key_env: EnvName | None = Field(None, description="environment variable holding a bearer token "
                                        "(never the key itself in the recipe)")


class Remote(_Served):
    """A reward served over HTTP. Per batch, vpo POSTs JSON {"prompts": [str], "videos": [{"frames": [PNG
    as base64], "fps": null}], "heads": [...]} to `url` and reads {"scores": [float]} (one score per video)
    or {"scores": {head: [float]}} for the declared `heads`. Non-2xx answers, malformed JSON, wrong counts
    and non-finite scores stop the job with the server's message."""

    summary = "a reward served over HTTP"
    kind: Literal["remote"] = "remote"
    heads: list[str] = Field(default_factory=list, description="named scores the server returns (none: one score)")
    batch: PositiveInt = Field(8, le=4096, description="videos per request")
    bounded: bool = Field(False, description="the scores lie in a fixed range (BPGO squashes unbounded ones)")


class ServedJudge(_Served):
    """A vision-language judge behind an OpenAI-compatible chat API (vLLM, SGLang, ...): one chat request
    per video, its frames as base64 PNG `image_url` parts with the question and the prompt, asking for one token;
    the score is P(yes) / (P(yes) + P(no)) from the returned top log-probabilities of the first token
    (a bare "yes" / "no" answer scores 1 / 0 when the server returns no log-probabilities)."""

    summary = "a VLM judge behind an OpenAI-compatible server"
    kind: Literal["served_judge"] = "served_judge"
    model: str = Field(description="the served model's name, as the server lists it under /v1/models")
    question: str = "Does this video match the prompt and look realistic?"
    top_logprobs: PositiveInt = Field(20, le=20, description="log-probabilities asked of the server's first token")


class Plugin(Schema):
    """A reward class of your own, without editing vpo: `entry` is `module.path:Class` (importable where
    the job runs) or the name an installed package registers under the `vpo.rewards` entry-point group
    (`[project.entry-points."vpo.rewards"] sharpness = "mypkg.rewards:Sharpness"`). The compiler checks
    the name's syntax only and never imports it; the job imports it when it starts. The class is built
    with `options` as string keyword arguments (and `path=` when set); it is either a vpo Reward or any
    object with `score(videos, prompts)` returning one (B,) tensor, or a dict of them per declared head."""

    summary = "a reward class from an installed package"
    kind: Literal["plugin"] = "plugin"
    entry: PluginEntry = Field(description="`module.path:Class` or a `vpo.rewards` entry-point name")
    heads: list[str] = Field(default_factory=list, description="named scores the class returns (none: one score)")
    path: PathText | None = Field(None, description="a local folder handed to the class as `path`")
    options: list[str] = Field(default_factory=list, description="`key=value` strings passed as keyword arguments")
    device: Literal["cpu", "gpu"] = Field("cpu", description="where the class wants its videos")
    bounded: bool = Field(True, description="the scores lie in a fixed range (BPGO squashes unbounded ones)")

    @model_validator(mode="after")
    def _options(self):
        for option in self.options:
            key, sep, _ = option.partition("=")
            if not sep or not key.isidentifier():
                raise fail("vpo_rule", f"an option is `key=value` with a Python name as key, got {option!r}",
                           field="options")
        return self


RewardSpec = Annotated[Union[WeightFree, FeatureConsistency, ShapesReward, ClipScore, Aesthetic, VlmJudge,
                             VideoRewardModel, Remote, ServedJudge, Plugin], Field(discriminator="kind")]


class Term(Schema):
    weight: float
    reward: ScalarReward


class RewardSum(Schema):
    """A weighted sum of scalar rewards: `a + 0.5 * b`."""

    kind: Literal["sum"] = "sum"
    terms: list[Term] = Field(min_length=1)


class Joint(Schema):
    """Several rewards balanced per step: each gets its own group advantage, then combined."""

    summary = "jointly balanced rewards"
    positional = ("rewards",)
    kind: Literal["joint"] = "joint"
    rewards: list[ScalarReward] = Field(min_length=2)
    balance: Literal["min_norm", "sum", "weights"] = "min_norm"
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _weights(self):
        if self.balance == "weights" and (self.weights is None or len(self.weights) != len(self.rewards)):
            raise fail("vpo_rule", f"balance = weights needs `weights` with {len(self.rewards)} numbers",
                       field="weights")
        if self.balance != "weights" and self.weights is not None:
            raise fail("vpo_rule", "`weights` is only used with balance = weights", field="weights")
        return self


def _as_sum(value: Any) -> Any:
    if isinstance(value, dict) and value.get("ref") in ("reward", "stage"):
        return {"kind": "sum", "terms": [{"weight": 1.0, "reward": value}]}
    return value


RewardExpr = Annotated[Annotated[Union[RewardSum, Joint], Field(discriminator="kind")], BeforeValidator(_as_sum)]


class Gate(Schema):
    """A constraint on a scalar reward: `r.safety >= 0.5`."""

    kind: Literal["gate"] = "gate"
    reward: ScalarReward
    op: Literal[">=", ">", "<=", "<"]
    threshold: float


def _gate(value: Any) -> Any:
    if isinstance(value, dict) and value.get("kind") == "gate":
        return value
    raise fail("vpo_type", "a gate compares a scalar reward with a number, e.g. `r.safety >= 0.5`")


# ---- schedules, reference, guidance ----------------------------------------------------------------
class Constant(Schema):
    positional = ("value",)
    kind: Literal["constant"] = "constant"
    value: float = Field(gt=0)


class Linear(Schema):
    """Linear from `start` to `end` over the stage's steps."""

    positional = ("start", "end")
    kind: Literal["linear"] = "linear"
    start: float = Field(gt=0)
    end: float = Field(gt=0)


class Cosine(Schema):
    """Cosine from `start` to `end` over the stage's steps."""

    positional = ("start", "end")
    kind: Literal["cosine"] = "cosine"
    start: float = Field(gt=0)
    end: float = Field(gt=0)


def _schedule(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"kind": "constant", "value": value}
    return value


class Frozen(Schema):
    kind: Literal["frozen"] = "frozen"


class Refresh(Schema):
    """Replace the reference by the current policy every `every` steps (OnlineVPO)."""

    positional = ("every",)
    kind: Literal["refresh"] = "refresh"
    every: PositiveInt = Field(200, le=100_000_000)


class Nrg(Schema):
    """Flow-NRG: reward-gradient guidance at inference, v~ = v - w * s/(1-s) * grad r."""

    summary = "reward guidance at inference"
    positional = ("reward",)
    kind: Literal["nrg"] = "nrg"
    reward: AnyReward
    weight: float = Field(1.0, gt=0)
    clamp: float = Field(10.0, gt=0, description="cap of s/(1-s) near s = 1")


def _slurm_name(field: str, many: bool = False):
    """A string that reaches an `#SBATCH` line: a strict Slurm name (vpolang.safety), at check time."""
    def check(value: str) -> str:
        problem = safety.slurm_name_problem(value, field, many)
        if problem:
            raise fail("vpo_slurm_name", problem, hint="Slurm names are letters, digits, `_`, `.` and `-`"
                       + (", several separated by commas" if many else ""))
        return value
    return AfterValidator(check)


def _sbatch_extra(value: dict[str, str]) -> dict[str, str]:
    for key, text in value.items():
        problem = safety.sbatch_option_problem(key)
        if problem:
            raise fail("vpo_sbatch_option", problem, hint="keys are sbatch long options without the dashes, "
                       "e.g. `qos`, `constraint`, `mail-type`; resources come from the cluster's own fields")
        problem = safety.sbatch_value_problem(key, text)
        if problem:
            raise fail("vpo_sbatch_value", problem, hint="values are letters, digits and `_ . , : = + / @ % -` "
                       "(`constraint` also `& | [ ] ( ) * !`); no whitespace, quotes, `#`, `;`, `$` or backticks")
    return value


Track = Annotated[list[Literal["tensorboard", "wandb"]], AfterValidator(lambda v: list(dict.fromkeys(v)))]
TRACK_DOC = ("experiment trackers every job placed here logs to (optional extra `vpo[track]`): "
             "tensorboard (event files in RUN/tensorboard/JOB), wandb (offline unless configured); "
             "`vpo run --track` adds to them")


class Slurm(Schema):
    """A Slurm cluster reached through submitit."""

    summary = "a Slurm cluster"
    kind: Literal["slurm"] = "slurm"
    partition: Annotated[str, _slurm_name("partition", many=True)] | None = Field(
        None, description="Slurm partition(s), e.g. gpu or a100,h100")
    account: Annotated[str, _slurm_name("account")] | None = Field(None, description="Slurm account")
    gpu: Annotated[str, _slurm_name("gpu")] = Field(description="GPU model, e.g. H100-80GB (see `vpo explain gpus`)")
    gpus_per_node: PositiveInt = Field(8, le=64)
    cpus_per_gpu: PositiveInt = Field(8, le=1024)
    mem_per_gpu: GiB | None = None
    usd_per_gpu_hour: float | None = Field(None, ge=0, description="overrides the catalogue price")
    time_limit: Seconds | None = Field(None, description="wall-clock limit per job, e.g. 48h")
    interconnect_gb_s: float | None = Field(None, gt=0, le=100_000, description="GB/s per GPU, one direction, "
                                            "of the link sequence parallelism's all-to-alls cross (unset: the "
                                            "GPU's NVLink or PCIe from the catalogue, 50 between nodes)")
    max_nodes: PositiveInt | None = Field(None, le=100_000)
    extra: Annotated[dict[str, str], AfterValidator(_sbatch_extra)] = Field(
        default_factory=dict, description="extra sbatch options by long name, e.g. qos, constraint")
    track: Track = Field(default_factory=list, description=TRACK_DOC)


class Local(Schema):
    """This machine: its GPUs if any, else the CPU."""

    summary = "the local machine"
    kind: Literal["local"] = "local"
    gpu: Annotated[str, _slurm_name("gpu")] = Field("cpu", description="GPU model of this machine, or cpu")
    gpus_per_node: Count = Field(0, ge=0, le=64)
    usd_per_gpu_hour: float | None = Field(None, ge=0)
    interconnect_gb_s: float | None = Field(None, gt=0, le=100_000, description="GB/s per GPU, one direction, "
                                            "of the link sequence parallelism's all-to-alls cross (unset: the "
                                            "GPU's NVLink or PCIe from the catalogue, 50 between nodes)")
    track: Track = Field(default_factory=list, description=TRACK_DOC)


ClusterSpec = Annotated[Union[Slurm, Local], Field(discriminator="kind")]

# The constructors a recipe can call or name, by declaration kind.
CONSTRUCTORS: dict[str, dict[str, type[Schema]]] = {
    "model": {"video_diffusion": VideoDiffusion, "vision_language": VisionLanguage},
    "dataset": {"prompts": Prompts, "videos": Videos, "pairs": PairsFile, "labels": LabelsFile,
                "shapes_videos": ShapesVideos, "shapes_prompts": ShapesPrompts},
    "reward": {"weight_free": WeightFree, "feature_consistency": FeatureConsistency, "shapes": ShapesReward,
               "clip_score": ClipScore, "aesthetic": Aesthetic, "vlm_judge": VlmJudge,
               "video_reward_model": VideoRewardModel, "remote": Remote, "served_judge": ServedJudge,
               "plugin": Plugin},
    "cluster": {"slurm": Slurm, "local": Local},
}
# Constructors usable inside field values.
VALUE_CONSTRUCTORS: dict[str, type[Schema]] = {
    "prompts": Prompts, "videos": Videos, "pairs": PairsFile, "labels": LabelsFile,
    "synthetic": Synthetic, "on_policy": OnPolicy, "online": Online,
    "reverse": Reverse, "shuffle": Shuffle, "freeze": Freeze,
    "joint": Joint, "constant": Constant, "linear": Linear, "cosine": Cosine,
    "refresh": Refresh, "frozen": Frozen, "nrg": Nrg,
}

GateExpr = Annotated[Gate, BeforeValidator(_gate)]
BetaSchedule = Annotated[Annotated[Union[Constant, Linear, Cosine], Field(discriminator="kind")],
                         BeforeValidator(_schedule)]
Reference = Annotated[Annotated[Union[Frozen, Refresh], Field(discriminator="kind")],
                      word_or_object("frozen", "refresh")]
