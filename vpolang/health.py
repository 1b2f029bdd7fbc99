"""Health alarms: pure functions over a job's metric stream (the records of its metrics.jsonl).

Each rule looks at the records a job has written so far (and, where it needs one, the job's planned
config) and returns the alarms it raises; `alarms()` runs them all. The same functions serve the live
progress of `vpo run`, `vpo status` and the HTML report, so a run shows the same alarm wherever it is
looked at. Torch-free: the report reads a run directory without the runtime.

The metric names are the trainers': `loss`, `kl`, `reward_mean` (GRPO) or `reward` (RWR), `grad_norm`,
`clip_frac` and `clip_frac_first` (GRPO's first inner update of each batch), `zero_std_groups` (GRPO:
the fraction of groups whose rewards are all equal), `margin` (DPO) and `val/<reward>` (in-training
validation)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import Any, Callable, Iterable, Literal

Severity = Literal["warning", "error"]

MIN_RECORDS = 8  # trend rules wait for this many records before judging a trend
TRAIN_REWARDS = ("reward_mean", "reward")


@dataclass(frozen=True)
class Alarm:
    code: str  # stable name, e.g. `kl_without_reward`
    severity: Severity
    step: int  # the step at which the condition was seen
    message: str

    def text(self) -> str:
        return f"{self.severity} [{self.code}] at step {self.step}: {self.message}"


def deduplicated(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stream as one record per step, in step order: a resumed job re-logs the steps after its last
    checkpoint, and the later record of a step (the attempt that went on) is the one that counts."""
    by_step: dict[int, dict[str, Any]] = {}
    for rec in records:
        step = rec.get("step")
        if isinstance(step, (int, float)) and not isinstance(step, bool):
            by_step[int(step)] = rec
    return [by_step[s] for s in sorted(by_step)]


def _series(records: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    out = []
    for rec in records:
        value = rec.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.append((int(rec["step"]), float(value)))
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _ends(series: list[tuple[int, float]]) -> tuple[float, float]:
    """Mean of the first and of the last quarter (at least 2 records each) of a series."""
    w = max(2, len(series) // 4)
    return _mean([v for _, v in series[:w]]), _mean([v for _, v in series[-w:]])


def _train_reward(records: list[dict[str, Any]]) -> tuple[str, list[tuple[int, float]]] | None:
    for key in TRAIN_REWARDS:
        series = _series(records, key)
        if series:
            return key, series
    return None


# ---- the rules
def non_finite(records: list[dict[str, Any]], config: dict[str, Any]) -> list[Alarm]:
    """NaN or Inf in any metric: the job stops on a non-finite loss; this names the first metric and
    step where any value went bad (often earlier than the loss, e.g. the gradient norm)."""
    for rec in records:
        for key, value in rec.items():
            if isinstance(value, float) and not math.isfinite(value):
                return [Alarm("non_finite", "error", int(rec.get("step", 0)),
                              f"`{key}` became {value}; lower `lr` or raise `grad_clip`")]
    return []


def kl_without_reward(records: list[dict[str, Any]], config: dict[str, Any]) -> list[Alarm]:
    """The KL to the reference grows while the training reward does not: the policy drifts without
    gaining anything (reward falling while KL rises is the worst case of it)."""
    kl, reward = _series(records, "kl"), _train_reward(records)
    if len(kl) < MIN_RECORDS or reward is None or len(reward[1]) < MIN_RECORDS:
        return []
    kl_first, kl_last = _ends(kl)
    r_first, r_last = _ends(reward[1])
    spread = max(1e-12, max(v for _, v in reward[1]) - min(v for _, v in reward[1]))
    if kl_last > 2 * kl_first + 1e-6 and (r_last - r_first) <= 0.05 * spread:
        trend = "falls" if r_last < r_first else "does not rise"
        return [Alarm("kl_without_reward", "warning", kl[-1][0],
                      f"KL rose {kl_first:.3g} -> {kl_last:.3g} while `{reward[0]}` {trend} ({r_first:.4g} -> "
                      f"{r_last:.4g}); lower `lr`, raise `kl`, or check the reward")]
    return []


def reward_hacking(records: list[dict[str, Any]], config: dict[str, Any]) -> list[Alarm]:
    """The training reward rises while a validation metric falls: the policy learns the reward's
    loopholes, not the task. Judged over the validated steps (at least three)."""
    reward = _train_reward(records)
    if reward is None:
        return []
    out = []
    for key in sorted({k for rec in records for k in rec if k.startswith("val/")}):
        val = _series(records, key)
        if len(val) < 3:
            continue
        first, last = val[0], val[-1]
        span = [v for s, v in reward[1] if first[0] <= s <= last[0]]
        if len(span) < 2:
            continue
        w = max(1, len(span) // 4)
        t_first, t_last = _mean(span[:w]), _mean(span[-w:])
        if last[1] < first[1] and t_last > t_first and _falls_mostly(val):
            out.append(Alarm("reward_hacking", "warning", last[0],
                             f"`{reward[0]}` rose {t_first:.4g} -> {t_last:.4g} while `{key}` fell "
                             f"{first[1]:.4g} -> {last[1]:.4g}; the best validated checkpoint is the one to keep "
                             "(`keep_best = true` in `with validate`)"))
    return out


def _falls_mostly(series: list[tuple[int, float]]) -> bool:
    drops = sum(1 for (_, a), (_, b) in zip(series, series[1:]) if b < a)
    return drops * 2 >= len(series) - 1


def zero_variance_groups(records: list[dict[str, Any]], config: dict[str, Any]) -> list[Alarm]:
    """Most GRPO groups have equal rewards for every rollout: their advantages are zero and they teach
    nothing (a saturated or too coarse reward, or too small a group)."""
    series = _series(records, "zero_std_groups")
    if len(series) < 3:
        return []
    recent = [v for _, v in series[-max(3, len(series) // 4):]]
    if _mean(recent) > 0.5:
        return [Alarm("zero_variance_groups", "warning", series[-1][0],
                      f"{_mean(recent):.0%} of the groups have zero reward variance (no learning signal); raise "
                      "`group_size`, `noise_level`, or use a finer reward")]
    return []


def off_policy(records: list[dict[str, Any]], config: dict[str, Any]) -> list[Alarm]:
    """On-policy self-check: on the first inner update of a batch the weights are the rollout's, so the
    ratio is 1 and nothing is clipped. Clipping there means the trainer's log-probabilities are not the
    sampler's (a different guidance, noise schedule or precision)."""
    series = _series(records, "clip_frac_first")
    bad = [(s, v) for s, v in series if v > 0.01]
    if bad:
        return [Alarm("off_policy", "error", bad[0][0],
                      f"{bad[0][1]:.1%} of the first inner update's ratios were clipped; the ratio should be 1 "
                      "there: the rollout's and the trainer's log-probabilities disagree")]
    return []


def clip_stuck(records: list[dict[str, Any]], config: dict[str, Any]) -> list[Alarm]:
    """With several updates per batch the later ones move the ratio off 1; a clip fraction that never
    leaves 0 means the updates do not move the policy (too low an `lr`, too wide a `clip_range`)."""
    if int(config.get("updates_per_batch") or 1) <= 1:
        return []  # one update per batch is the first inner step: the ratio is 1 by construction
    series = _series(records, "clip_frac")
    if len(series) >= MIN_RECORDS and all(v == 0.0 for _, v in series):
        return [Alarm("clip_stuck", "warning", series[-1][0],
                      f"`clip_frac` stayed 0 for {len(series)} steps with {config['updates_per_batch']} updates per "
                      "batch: the ratio never leaves 1; raise `lr` or lower `clip_range`")]
    return []


def grad_norm_explosion(records: list[dict[str, Any]], config: dict[str, Any]) -> list[Alarm]:
    """A gradient norm far above its own history (10x the median so far)."""
    series = _series(records, "grad_norm")
    for i in range(MIN_RECORDS, len(series)):
        history = median(v for _, v in series[:i])
        if history > 0 and series[i][1] > 10 * history:
            return [Alarm("grad_norm_explosion", "warning", series[i][0],
                          f"`grad_norm` {series[i][1]:.3g} is {series[i][1] / history:.0f}x its median so far "
                          f"({history:.3g}); lower `lr` or `grad_clip`")]
    return []


def dpo_margin_flat(records: list[dict[str, Any]], config: dict[str, Any]) -> list[Alarm]:
    """A DPO margin that never leaves 0: the policy does not separate the pairs from the reference."""
    series = _series(records, "margin")
    if len(series) >= MIN_RECORDS and max(abs(v) for _, v in series) < 1e-6:
        return [Alarm("dpo_margin_flat", "warning", series[-1][0],
                      f"the DPO margin stayed 0 for {len(series)} steps; raise `lr` or `beta`, or check that "
                      "winners and losers differ")]
    return []


RULES: tuple[Callable[[list[dict[str, Any]], dict[str, Any]], list[Alarm]], ...] = (
    non_finite, kl_without_reward, reward_hacking, zero_variance_groups, off_policy, clip_stuck,
    grad_norm_explosion, dpo_margin_flat)


def alarms(records: Iterable[dict[str, Any]], config: Any = None) -> list[Alarm]:
    """Every alarm the metric stream raises, in rule order."""
    stream = deduplicated(records)
    if hasattr(config, "model_dump"):  # a plan job's typed config
        config = config.model_dump()
    return [alarm for rule in RULES for alarm in rule(stream, config or {})]
