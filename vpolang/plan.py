"""The execution plan: the only contract between the compiler and the runtime.

A Plan is a DAG of jobs with stable ids, each carrying its fully resolved configuration (every default
filled in, every reference replaced by what it denotes), its inputs as artifact references, its
placement and its estimates. `vpo plan -o plan.json` writes it; `vpo run plan.json` executes exactly it;
every run directory keeps it as its lock file.

Compatibility: `schema_version` is MAJOR.MINOR. A reader accepts any plan with its own MAJOR and a MINOR
up to its own; MINOR bumps only add optional fields. Anything else is refused with a clear message.
2.0: training jobs carry a required `execution` block (the schedule the runtime executes) and
`placement.zero_stage` moved into it; a 1.x plan has no schedule to execute, so it is refused.
3.0: `execution.reward_execution` is an instruction (`serial` | `threads`: how the rewards one call
scores run), no longer a description of where they run; a 2.x plan's values mean nothing to it.
4.0: `config` is typed: one model per job kind (vpolang/jobconfig.py, derived from the stage schemas),
chosen by `config.kind`, which must equal the job's `kind`; unknown fields are refused and absent
ones take the schema's default. Lowered sources name their input slot (`{"kind": "on_policy",
"input": ..., "n": ..., "labels": ...}`). A 3.x plan's configs are not checked against a schema, so it
is refused.
4.1: `placement.track` (experiment trackers; not in the job hash).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import safety

from .atomic import write_text
from .jobconfig import JOB_KINDS, TRAINING_KINDS, AnyJobConfig

__all__ = ["TRAINING_KINDS", "JOB_KINDS"]  # re-exported: vpolang/jobconfig.py holds the one table of kinds

SCHEMA_VERSION = "4.1"

JobKind = Literal[JOB_KINDS]  # stages, and the data jobs lowered from on_policy(...) and synthetic(...)
# Job kinds whose trainer runs in one process (runtime/registry.py: no `run.distributed`): lowering
# places them on one GPU; tests/runtime/test_registry.py checks the runtime agrees.
SINGLE_PROCESS_KINDS = ("evaluate", "judge", "synthesize")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _grammar(grammar: str, what: str):
    """Ids and names become folder names and Slurm job names: one grammar, the language's (safety.py)."""
    def check(value: str) -> str:
        problem = safety.identifier_problem(value, what, grammar)
        if problem:
            raise ValueError(problem)
        return value
    return AfterValidator(check)


JobId = Annotated[str, _grammar(safety.DOTTED, "job id")]
StageId = Annotated[str, _grammar(safety.DOTTED, "stage id")]
ArtifactName = Annotated[str, _grammar(safety.NAME, "artifact name")]
SlotName = Annotated[str, _grammar(safety.SLOT, "input slot")]
JobHash = Annotated[str, _grammar(safety.HEX_HASH, "job hash")]
RecipeName = Annotated[str, _grammar(safety.NAME, "recipe name")]


class PlanSpan(_Strict):
    """Where a job was declared: reported by the runtime when something fails late."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class ArtifactRef(_Strict):
    """An output of another job: lives at <run_dir>/<job>/artifacts/<name>."""

    job: JobId
    name: ArtifactName


class Placement(_Strict):
    executor: Literal["local", "slurm"] = "local"
    cluster: str | None = None
    partition: str | None = None
    account: str | None = None
    gpu: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0  # 0: CPU (or whatever the local machine has)
    cpus_per_task: int | None = None
    mem_gib: float | None = None
    time_limit_s: int | None = None
    usd_per_gpu_hour: float | None = None  # the cluster's price, overriding the GPU catalogue's
    interconnect_gb_s: float | None = None  # the cluster's GPU link, overriding the GPU catalogue's
    track: list[Literal["tensorboard", "wandb"]] = Field(default_factory=list)  # experiment trackers
    slurm_extra: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _safe_strings(self):
        """The strings that reach `#SBATCH` lines, held to the grammars the compiler checks recipes with."""
        problems = safety.placement_problems(self)
        if problems:
            raise ValueError(problems[0])
        return self

    @property
    def world_size(self) -> int:
        return self.nodes * max(self.gpus_per_node, 1)


class Estimate(_Strict):
    flops: float = 0.0
    step_time_s: float = 0.0
    hours: float = 0.0
    gpu_hours: float = 0.0
    cost_usd: float = 0.0
    peak_memory_gib: float = 0.0
    capacity_gib: float | None = None
    breakdown: dict[str, float] = Field(default_factory=dict)


class ExecutionBlock(_Strict):
    """How a training job runs, decided once by the planner (vpolang/estimate/execution.py) and executed
    as is by the runtime, which logs it. The plan's memory and time estimates are those of this block.

    A step trains on the global batch: `rows_per_rank` rows on each of `world_size` ranks (videos for
    sft, rwr and kto, pairs for dpo, rollouts for grpo, items for reward_model), in `grad_accum`
    forward/backward passes of at most `micro_batch` rows, then one optimiser step. With
    `sequence_parallel` = k > 1, k consecutive ranks share each row (each holds 1/k of its tokens), so
    the batch is `rows_per_rank` x world_size / k rows."""

    world_size: int = Field(ge=1, description="processes, one per GPU (or CPU process)")
    optimizer: Literal["torch_adamw", "deepspeed_zero"]
    zero_stage: int | None = Field(None, ge=0, le=3, description="DeepSpeed ZeRO stage; None with torch AdamW")
    sequence_parallel: int = Field(1, ge=1, description="ranks that split each row's tokens (Ulysses); the "
                                   "ranks of a group hold the same rows: world_size / sequence_parallel "
                                   "data-parallel groups")
    rows_per_rank: int = Field(ge=1, description="rows of the global batch each rank trains on per step (the "
                               "rows of its sequence-parallel group)")
    micro_batch: int = Field(ge=1, description="rows per forward/backward")
    grad_accum: int = Field(ge=1, description="forward/backward passes accumulated per optimiser step "
                            "(grpo: per trained timestep)")
    micro_batch_pinned: bool = False  # the recipe's `micro_batch`, not the planner's choice
    checkpointing: bool = False  # activation (gradient) checkpointing of the trained network
    groups_span_ranks: bool = False  # grpo: a group's rollouts may lie on several ranks
    candidates_per_rank: int | None = None  # online dpo: videos each rank samples per step
    reward_execution: Literal["serial", "threads"] | None = Field(
        None, description="how the rewards one call scores together run (grpo's reward expression, online "
        "dpo's judges; sft/rwr score the dataset once with one reward): `serial`, or `threads`, each on its "
        "own thread and CUDA stream (runtime/rewards/concurrent.py); None for a job that scores nothing. "
        "grpo scores each rank's rollouts and gathers the scores before anything per group")

    def summary(self) -> str:
        """One line for logs and the plan table: `16 ranks x 1 x 2 accum, ZeRO-2, ckpt`."""
        optimiser = "torch AdamW" if self.optimizer == "torch_adamw" else f"ZeRO-{self.zero_stage}"
        ranks = f"{self.world_size} rank{'s' if self.world_size > 1 else ''}"
        pinned = " (pinned)" if self.micro_batch_pinned else ""
        parts = [f"{ranks} x {self.micro_batch}{pinned} x {self.grad_accum} accum", optimiser]
        if self.sequence_parallel > 1:
            parts.append(f"sequence-parallel {self.sequence_parallel}")
        if self.checkpointing:
            parts.append("ckpt")
        if self.groups_span_ranks:
            parts.append("groups span ranks")
        return ", ".join(parts)


class Job(_Strict):
    id: JobId
    kind: JobKind
    stage: StageId  # the declaration this job comes from (a stage id; data jobs name their stage)
    depends_on: list[JobId] = Field(default_factory=list)
    inputs: dict[SlotName, ArtifactRef] = Field(default_factory=dict)
    outputs: list[ArtifactName] = Field(default_factory=list)
    placement: Placement = Field(default_factory=Placement)
    config: AnyJobConfig  # the typed config of this kind (vpolang/jobconfig.py)
    seed: int = 0
    hash: JobHash = ""
    estimate: Estimate = Field(default_factory=Estimate)
    execution: ExecutionBlock | None = None  # training jobs: required (see `check_executable`)
    span: PlanSpan | None = None

    @model_validator(mode="before")
    @classmethod
    def _config_kind(cls, data: Any) -> Any:
        """A config given as a dict without `kind` is of the job's kind."""
        if isinstance(data, dict) and isinstance(data.get("config"), dict) and "kind" not in data["config"]:
            data = {**data, "config": {**data["config"], "kind": data.get("kind")}}
        return data

    @model_validator(mode="after")
    def _same_kind(self):
        if self.config.kind != self.kind:
            raise ValueError(f"job {self.id} is a {self.kind} job but its config is of kind {self.config.kind}")
        return self


class Totals(_Strict):
    gpu_hours: float = 0.0
    cost_usd: float = 0.0
    hours_critical_path: float = 0.0


class RecipeInfo(_Strict):
    path: str
    sha256: str
    name: RecipeName  # names the default run directory


class Plan(_Strict):
    schema_version: str = SCHEMA_VERSION
    vpo_version: str = "0.1"
    recipe: RecipeInfo
    params: dict[str, Any] = Field(default_factory=dict)
    budget_usd: float | None = None
    jobs: list[Job] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)

    @model_validator(mode="after")
    def _closed_graph(self):
        """Every dependency and input names a job of this plan, once, without cycles."""
        ids = [job.id for job in self.jobs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"job id {safety.shown(next(i for i in ids if ids.count(i) > 1))} appears twice")
        for job in self.jobs:
            for dep in [*job.depends_on, *(ref.job for ref in job.inputs.values())]:
                if dep not in ids:
                    raise ValueError(f"job {job.id} needs {safety.shown(dep)}, which is not a job of this plan")
        _check_acyclic(self.jobs)
        return self

    def job(self, job_id: str) -> Job:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise KeyError(job_id)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, two-space indent, trailing newline (stable for golden files)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


class PlanVersionError(ValueError):
    pass


class PlanError(ValueError):
    """A plan.json that is not a valid plan: one line saying where and what."""


def canonical_hash(payload: Any) -> str:
    """sha256 over canonical JSON: the identity of a job's configuration and inputs."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def job_hash(job: Job, input_hashes: dict[str, str]) -> str:
    """Content hash over what determines a job's result. Placement is left out on purpose (the GPU
    model, partition or price do not change the weights); the execution block is in, because the
    optimiser, the rank split, the micro-batches and checkpointing decide what runs and in which
    floating-point order, and a checkpoint of one schedule does not resume under another."""
    execution = job.execution.model_dump(mode="json") if job.execution is not None else None
    config = job.config.model_dump(mode="json")
    return canonical_hash({"kind": job.kind, "config": config, "seed": job.seed, "execution": execution,
                           "inputs": {k: [r.job, r.name, input_hashes.get(r.job, "")]
                                      for k, r in sorted(job.inputs.items())}})


def assign_hashes(jobs: list[Job]) -> None:
    """Each job's hash, in dependency order (a job's hash covers its inputs' hashes)."""
    hashes: dict[str, str] = {}
    for job in topological_order(jobs):
        job.hash = job_hash(job, hashes)
        hashes[job.id] = job.hash


def check_compatible(version: str) -> None:
    try:
        major, minor = (int(x) for x in version.split("."))
    except ValueError as exc:
        raise PlanVersionError(f"plan schema_version {version!r} is not MAJOR.MINOR") from exc
    own_major, own_minor = (int(x) for x in SCHEMA_VERSION.split("."))
    if major != own_major or minor > own_minor:
        raise PlanVersionError(
            f"plan schema_version {version} cannot be read by this vpo (reads {own_major}.0 to "
            f"{SCHEMA_VERSION}); re-create the plan with `vpo plan` from its recipe")


def load_plan(path: str | Path) -> Plan:
    """The plan at `path`, validated (ids, names and placements included) before anything uses it."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise PlanError(f"expected a JSON object, got {type(data).__name__}")
    check_compatible(str(data.get("schema_version", "")))
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    """pydantic's report in one line: where in the plan, and what (`jobs.0.id: job id '../x' is not ...`)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(p) if re.fullmatch(safety.SLOT, str(p)) or isinstance(p, int) else safety.shown(p)
                     for p in first["loc"]) or "plan"
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {message}{more}"


def save_plan(plan: Plan, path: str | Path) -> None:
    write_text(path, plan.to_json())


def _check_acyclic(jobs: list[Job]) -> None:
    """Kahn's algorithm, iterative: a hand-made plan.json may hold a long chain or a cycle."""
    waiting = {job.id: len(set(job.depends_on)) for job in jobs}
    users: dict[str, list[str]] = {job.id: [] for job in jobs}
    for job in jobs:
        for dep in set(job.depends_on):
            users[dep].append(job.id)
    ready = [job_id for job_id, n in waiting.items() if n == 0]
    while ready:
        for user in users[ready.pop()]:
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    stuck = sorted(job_id for job_id, n in waiting.items() if n > 0)
    if stuck:
        raise ValueError(f"dependency cycle through job {stuck[0]}")


def topological_order(jobs: list[Job]) -> list[Job]:
    """Jobs in dependency order, ties kept in declaration order (deterministic)."""
    by_id = {job.id: job for job in jobs}
    done: set[str] = set()
    order: list[Job] = []
    visiting: set[str] = set()

    def visit(job: Job) -> None:
        if job.id in done:
            return
        if job.id in visiting:
            raise ValueError(f"dependency cycle through job {job.id}")
        visiting.add(job.id)
        for dep in job.depends_on:
            visit(by_id[dep])
        visiting.discard(job.id)
        done.add(job.id)
        order.append(job)

    for job in jobs:
        visit(job)
    return order


def select_jobs(plan: Plan, selector: str | None) -> list[Job]:
    """dbt-style selection: `rl` (exactly it), `rl+` (it and everything downstream), `+rl` (it and
    everything upstream), `+rl+` (both); a stage id selects all of its jobs (`pref` takes
    `pref.pairs.on_policy...` too); several selectors separated by commas are united."""
    ordered = topological_order(plan.jobs)
    if not selector:
        return ordered
    chosen: set[str] = set()
    for part in (p.strip() for p in selector.split(",") if p.strip()):
        up, down = part.startswith("+"), part.endswith("+")
        name = part.strip("+")
        seeds = {j.id for j in plan.jobs if j.id == name or j.stage == name or j.id.startswith(name + ".")}
        if not seeds:
            raise KeyError(f"no job or stage matches {name!r}; jobs: {', '.join(j.id for j in ordered)}")
        chosen |= seeds
        if down:
            chosen |= _closure(plan, seeds, downstream=True)
        if up:
            chosen |= _closure(plan, seeds, downstream=False)
    return [j for j in ordered if j.id in chosen]


def _closure(plan: Plan, seeds: set[str], downstream: bool) -> set[str]:
    edges: dict[str, set[str]] = {j.id: set() for j in plan.jobs}
    for job in plan.jobs:
        for dep in job.depends_on:
            if downstream:
                edges[dep].add(job.id)
            else:
                edges[job.id].add(dep)
    seen, stack = set(seeds), list(seeds)
    while stack:
        for nxt in edges[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen
