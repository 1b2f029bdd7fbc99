"""Running several light rewards on one device at once (TeleBoost §6.1.2).

Rewards in a group run concurrently, one thread each (torch kernels and OpenCV release the GIL); on
CUDA each thread launches on its own stream so small models overlap on the GPU. Groups run one after
another, so the makespan is sum over groups of the slowest member (TeleBoost eq. 7-8). TeleBoost splits
the GPU between a group's workers with MPS thread quotas summing to at most 1 (eq. 9); MPS quotas are
per process, so within one process we bound a group by memory instead: the members' `needs.memory_gib`
must fit the budget. Scores equal serial execution's: the same computation runs, only overlapped.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping

import torch

from .base import Reward

MODES = ("serial", "threads", "grouped")


@dataclass
class RunResult:
    scores: dict[str, dict[str, torch.Tensor]]  # reward name -> head -> (B,)
    makespan_s: float  # wall time of the whole run
    groups: list[list[str]]  # the groups, in the order they ran
    seconds: dict[str, float] = field(default_factory=dict)  # each reward's own wall time


def plan_groups(seconds: Mapping[str, float], memory_gib: Mapping[str, float],
                budget_gib: float | None) -> list[list[str]]:
    """Greedy grouping for a small makespan under a memory budget: longest first, each reward joins
    the group where it fits with the least memory to spare (every open group already has a slower
    member, so joining adds no time), else opens a new group. A reward larger than the budget runs alone."""
    budget = float("inf") if budget_gib is None else budget_gib
    groups: list[list[str]] = []
    used: list[float] = []
    for name in sorted(seconds, key=lambda n: (-seconds[n], n)):
        need = memory_gib.get(name, 0.0)
        fits = [g for g in range(len(groups)) if used[g] + need <= budget]
        if fits:
            best = min(fits, key=lambda g: budget - used[g] - need)
            groups[best].append(name)
            used[best] += need
        else:
            groups.append([name])
            used.append(need)
    return groups


def makespan(groups: list[list[str]], seconds: Mapping[str, float]) -> float:
    """Eq. 8: sum over groups of the slowest member's time."""
    return sum(max(seconds[n] for n in g) for g in groups)


def run_rewards(rewards: Mapping[str, Reward], videos: torch.Tensor, prompts: list[str], mode: str = "serial",
                budget_gib: float | None = None, seconds: Mapping[str, float] | None = None) -> RunResult:
    """Scores of every reward. `serial`: one at a time; `threads`: all at once; `grouped`: plan_groups
    over `seconds` (measured per-reward times; equal when unknown) within `budget_gib`."""
    if mode not in MODES:
        raise ValueError(f"unknown reward execution mode {mode!r}; one of {', '.join(MODES)}")
    names = list(rewards)
    if mode == "serial":
        groups = [[n] for n in names]
    elif mode == "threads":
        groups = [names]
    else:
        groups = plan_groups(seconds or {n: 1.0 for n in names},
                             {n: rewards[n].needs.memory_gib for n in names}, budget_gib)
    scores, took = {}, {}
    start = time.perf_counter()
    for group in groups:
        for name, (result, elapsed) in _run_group({n: rewards[n] for n in group}, videos, prompts).items():
            scores[name], took[name] = result, elapsed
    return RunResult({n: scores[n] for n in names}, time.perf_counter() - start, groups, took)


def _run_group(group: Mapping[str, Reward], videos: torch.Tensor, prompts: list[str]):
    if len(group) == 1:
        name, reward = next(iter(group.items()))
        return {name: _timed(reward, videos, prompts)}
    with ThreadPoolExecutor(max_workers=len(group)) as pool:
        futures = {n: pool.submit(_on_own_stream, r, videos, prompts) for n, r in group.items()}
        return {n: f.result() for n, f in futures.items()}


def _timed(reward: Reward, videos: torch.Tensor, prompts: list[str]):
    start = time.perf_counter()
    out = reward(videos, prompts)  # returns CPU tensors: the device work is finished when it returns
    return out, time.perf_counter() - start


def _on_own_stream(reward: Reward, videos: torch.Tensor, prompts: list[str]):
    if reward.device.type != "cuda":
        return _timed(reward, videos, prompts)
    stream = torch.cuda.Stream(device=reward.device)
    stream.wait_stream(torch.cuda.current_stream(reward.device))  # videos may still be in flight
    with torch.cuda.stream(stream):
        return _timed(reward, videos, prompts)


def profile_rewards(rewards: Mapping[str, Reward], videos: torch.Tensor, prompts: list[str],
                    repeats: int = 1) -> dict[str, float]:
    """Each reward's serial wall time (best of `repeats`), the input `plan_groups` wants."""
    return {n: min(_timed(r, videos, prompts)[1] for _ in range(repeats)) for n, r in rewards.items()}


def benchmark_modes(rewards: Mapping[str, Reward], videos: torch.Tensor, prompts: list[str],
                    budget_gib: float | None = None, repeats: int = 3) -> dict[str, RunResult]:
    """Each mode's best-of-`repeats` run after one warm-up (lazy CUDA init, kernel selection); grouped
    mode plans with the serial per-reward times. Raises if any mode's scores differ from serial's."""
    run_rewards(rewards, videos, prompts, "serial")
    seconds = profile_rewards(rewards, videos, prompts, repeats)
    best: dict[str, RunResult] = {}
    for mode in MODES:
        runs = [run_rewards(rewards, videos, prompts, mode, budget_gib, seconds) for _ in range(repeats)]
        best[mode] = min(runs, key=lambda r: r.makespan_s)
    for mode in ("threads", "grouped"):
        _check_same(best["serial"].scores, best[mode].scores, mode)
    return best


def _check_same(serial: dict, other: dict, mode: str, atol: float = 1e-4) -> None:
    for name, heads in serial.items():
        for head, scores in heads.items():
            if not torch.allclose(other[name][head], scores, atol=atol, rtol=1e-4):
                raise RuntimeError(f"{mode} execution changed reward `{name}` head `{head}`: "
                                   f"{other[name][head].tolist()} vs serial {scores.tolist()}")
