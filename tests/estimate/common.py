"""Shared by the estimate tests: the Wan2.1-T2V-1.3B shapes (as stdlib/models.vpo declares them, checked
in test_arch.py), the measurement files, and a cluster builder."""
from __future__ import annotations

import json
from pathlib import Path

from vpolang.estimate import Cluster, VideoDiT, lookup_gpu

ROOT = Path(__file__).resolve().parents[2]

WAN_1_3B = VideoDiT(params=1_420_000_000, layers=30, hidden=1536, heads=12, ffn=8960, patch=(1, 2, 2),
                    vae_stride=(4, 8, 8), latent_channels=16, text_len=512, text_dim=4096,
                    text_encoder_params=5_700_000_000, vae_params=127_000_000)


def measurement(relative: str) -> dict:
    """A result file of bench/ (the calibration's evidence)."""
    return json.loads((ROOT / relative).read_text())


def cluster(gpu: str = "H100-80GB", nodes: int = 1, gpus_per_node: int = 8, zero_stage: int = 2, **kw) -> Cluster:
    return Cluster(lookup_gpu(gpu), nodes, gpus_per_node, zero_stage, **kw)
