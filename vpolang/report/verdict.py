"""Did each stage work? Per training stage whose input the evaluation also sampled: every metric before ->
after, the paired difference (the stage minus its input, on the same prompts and noise), and a verdict;
alarms where a stage made its own target worse, or where its training reward rose while the held-out
metric fell. Pure: reads the plan and the records the run wrote (no torch)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .collect import JobRecord, RunRecord

ALPHA = 0.01  # a difference counts (better / worse) at a paired two-sided p below this
LOWER_IS_BETTER = re.compile(r"(^|[._])(loss|error|fid|fvd|wrong|flicker_rate)")
TRAIN_REWARD = "reward_mean"  # GRPO's rollout reward per step
EDGE_FRACTION = 0.2  # the training reward's first and last fifth of the records are compared


@dataclass
class Row:
    metric: str
    higher_is_better: bool
    before: float
    after: float
    diff: dict[str, Any]
    verdict: str  # better / no change / worse
    target: bool


@dataclass
class StageVerdict:
    stage: str
    kind: str
    start: str
    rows: list[Row]
    alarms: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """On the stage's target metrics (all metrics when none is named): worse if any is worse, better
        if at least one is better, else no change."""
        targets = [r.verdict for r in self.rows if r.target] or [r.verdict for r in self.rows]
        if "worse" in targets:
            return "worse"
        return "better" if "better" in targets else "no change"


def higher_is_better(metric: str) -> bool:
    return LOWER_IS_BETTER.search(metric) is None


def judge(diff: dict[str, Any], higher: bool, alpha: float = ALPHA) -> str:
    mean, p = diff.get("mean"), diff.get("p")
    if not isinstance(mean, (int, float)) or not isinstance(p, (int, float)) or math.isnan(mean) or p >= alpha:
        return "no change"
    return "better" if (mean > 0) == higher else "worse"


TEMPORAL = ("reversal_gap", "smoothness", "temporal_flicker", "flicker")  # what temporal negatives target


def config_of(job) -> dict[str, Any]:
    """A job's config as plain data (the plan's typed config, or a dict)."""
    cfg = job.config
    return cfg.model_dump() if hasattr(cfg, "model_dump") else dict(cfg or {})


def targets(job, metrics: list[str]) -> list[str]:
    """The evaluation metrics a stage optimises: GRPO its reward's terms; DPO (and any other preference
    stage) the temporal metrics when it learns from synthetic temporal negatives (the held-out
    `reversal_gap`, smoothness, flicker); any other stage (SFT) the evaluation's first metric."""
    cfg = config_of(job)
    if job.kind == "grpo":
        reward = cfg.get("reward") or {}
        refs = reward.get("terms") or reward.get("rewards") or []
        names = {str((t.get("reward", t) or {}).get("name", "")).split(".")[-1] for t in refs if isinstance(t, dict)}
        return [m for m in metrics if m in names]
    if job.kind == "dpo":
        temporal = [m for m in metrics if m.split(".")[-1] in TEMPORAL]
        if temporal and _synthetic(cfg.get("pairs")):
            return temporal
    return metrics[:1]


def _synthetic(pairs) -> bool:
    """Pairs with synthetic temporal negatives, alone or in a mixture."""
    if not isinstance(pairs, dict):
        return False
    if pairs.get("kind") == "synthetic":
        return True
    return any(_synthetic(p) for p in pairs.get("sources", []) or pairs.get("terms", []) if isinstance(p, dict))


def stage_verdicts(run: RunRecord, evaluation: dict[str, Any]) -> list[StageVerdict]:
    models, pairs = evaluation.get("models"), evaluation.get("paired_all")
    if not isinstance(models, dict) or not isinstance(pairs, dict):
        return []
    records = {r.job.id: r for r in run.jobs}
    out = []
    for job in run.plan.jobs:
        policy = config_of(job).get("policy")
        start = policy.get("name") if isinstance(policy, dict) else None
        if job.id not in models or start not in models or not isinstance(pairs.get(job.id), dict):
            continue
        diffs = pairs[job.id].get(start)
        if not isinstance(diffs, dict):
            continue
        metrics = [m for m in models[job.id] if m in diffs]
        wanted = targets(job, metrics)
        rows = []
        for m in metrics:
            higher = higher_is_better(m)
            rows.append(Row(m, higher, _mean(models[start].get(m)), _mean(models[job.id].get(m)), diffs[m],
                            judge(diffs[m], higher), m in wanted))
        v = StageVerdict(job.id, job.kind, start, rows)
        v.alarms = alarms(v, records.get(job.id))
        out.append(v)
    return out


def alarms(v: StageVerdict, record: JobRecord | None) -> list[str]:
    found = [f"`{v.stage}` made its own target {r.metric} worse ({r.before:.4g} -> {r.after:.4g}, "
             f"p={r.diff.get('p', float('nan')):.3g})" for r in v.rows if r.target and r.verdict == "worse"]
    rise = training_rise(record)
    if rise is not None and rise > 0:
        for r in v.rows:
            fell = isinstance(r.diff.get("mean"), (int, float)) and (r.diff["mean"] < 0) == r.higher_is_better
            if r.target and fell and r.diff.get("p", 1.0) < 0.05:
                found.append(f"`{v.stage}`'s training reward rose (+{rise:.3g}) while held-out {r.metric} fell "
                             f"({r.diff['mean']:+.3g}, p={r.diff['p']:.3g}): it fits its training prompts only")
    return found


def training_rise(record: JobRecord | None) -> float | None:
    """The training reward's mean over the last fifth of the records minus over the first fifth."""
    if record is None:
        return None
    values = [float(m[TRAIN_REWARD]) for m in record.metrics if isinstance(m.get(TRAIN_REWARD), (int, float))]
    if len(values) < 5:
        return None
    k = max(1, int(len(values) * EDGE_FRACTION))
    return sum(values[-k:]) / k - sum(values[:k]) / k


def _mean(value) -> float:
    return float(value["mean"]) if isinstance(value, dict) and isinstance(value.get("mean"), (int, float)) else math.nan
