"""Estimates for `vpo plan`: FLOPs, time, GPU-hours, dollars, peak memory per GPU, batch layout, fit and
fixes. Standard library only; `jobs.py` adapts a plan's Job to this API (see README.md)."""
from .arch import RESOLUTIONS, Clip, VideoDiT, VisionLanguage, resolution
from .batch import BatchError, BatchPlan, per_gpu_samples, per_gpu_videos, solve
from .calibration import Efficiency
from .estimate import Cluster, Fix, JobEstimate, estimate_job
from .fixes import suggest_fixes
from .hardware import CATALOGUE, Gpu, UnknownGpu, default_efficiency, lookup_gpu
from .workload import (Dpo, Evaluate, Generate, Grpo, Judge, Kto, OnlinePairs, RewardModel, Rwr, Scorer, Sft,
                       Synthesize, Work)

__all__ = ["RESOLUTIONS", "Clip", "VideoDiT", "VisionLanguage", "resolution", "BatchError", "BatchPlan",
           "per_gpu_samples", "per_gpu_videos", "solve", "Efficiency", "Cluster", "Fix", "JobEstimate",
           "estimate_job", "suggest_fixes", "CATALOGUE", "Gpu", "UnknownGpu", "default_efficiency", "lookup_gpu",
           "Dpo", "Evaluate", "Generate", "Grpo", "Judge", "Kto", "OnlinePairs", "RewardModel", "Rwr", "Scorer",
           "Sft", "Synthesize", "Work"]
