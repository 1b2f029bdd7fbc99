"""The GPU catalogue and the efficiency (MFU) the planner assumes, with where each number comes from."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    name: str
    bf16_tflops: float  # dense peak
    memory_gib: float
    usd_per_hour: float


GPUS = {g.name.lower(): g for g in (
    Gpu("H100-80GB", 989.0, 79.6, 2.50), Gpu("H200", 989.0, 139.8, 3.50), Gpu("A100-80GB", 312.0, 79.2, 1.80),
    Gpu("A100-40GB", 312.0, 39.4, 1.30), Gpu("L40S", 362.0, 44.5, 1.00), Gpu("RTX-4090", 165.0, 23.6, 0.40),
    Gpu("A10G", 125.0, 22.0, 0.75), Gpu("L4", 121.0, 22.0, 0.70), Gpu("cpu", 0.5, 24.0, 0.0),
)}

# Model FLOP utilisation of a training step, measured: Wan2.1-1.3B fwd+bwd at 480x832x33 on an H100,
# 237.6 TFLOP in 0.614 s = 39% (bench/results/gpu_wan_step_33f.json). Sampling (no-grad forwards) ran at
# 38% (72.9 TFLOP in 0.194 s). Other GPUs are assumed to reach the same fraction of their peak.
TRAIN_MFU = 0.39
SAMPLE_MFU = 0.38


def gpu(name: str | None) -> Gpu:
    key = (name or "cpu").lower()
    if key not in GPUS:
        raise KeyError(name)
    return GPUS[key]
