"""The GPU catalogue: dense bf16 peak, memory, a default price, interconnect, and the efficiency the
planner assumes on each (calibration.EFFICIENCY)."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from .calibration import EFFICIENCY, Efficiency


@dataclass(frozen=True)
class Gpu:
    name: str
    bf16_tflops: float  # dense tensor-core peak (no sparsity)
    memory_gib: float  # what torch reports as total device memory
    usd_per_hour: float  # typical on-demand cloud price per GPU; recipes override it per cluster
    interconnect: str  # nvlink | pcie | none: how GPUs of a node exchange gradients
    link_gb_s: float = 0.0  # GB/s per GPU, one direction, to the node's other GPUs (data sheets)


# Peaks from the vendors' data sheets; prices are typical 2025 on-demand rates. `cpu` stands for the
# 2-core CI machine (fp32 FMA peak of two cores) so that local runs get a time too.
CATALOGUE: tuple[Gpu, ...] = (
    Gpu("H100-80GB", 989.0, 79.6, 2.50, "nvlink", 450.0),
    Gpu("H200", 989.0, 139.8, 3.50, "nvlink", 450.0),
    Gpu("A100-80GB", 312.0, 79.2, 1.80, "nvlink", 300.0),
    Gpu("A100-40GB", 312.0, 39.4, 1.30, "nvlink", 300.0),
    Gpu("L40S", 362.0, 44.5, 1.00, "pcie", 32.0),
    Gpu("RTX-4090", 165.0, 23.6, 0.40, "pcie", 32.0),
    Gpu("A10G", 125.0, 22.0, 0.75, "pcie", 16.0),
    Gpu("L4", 121.0, 22.0, 0.70, "pcie", 32.0),
    Gpu("cpu", 0.157, 24.0, 0.0, "none", 10.0),
)

# A sequence-parallel group spanning nodes crosses the network: 400 Gb/s InfiniBand per GPU (NDR, as
# H100 clusters are built) is 50 GB/s; a cluster's `interconnect_gb_s` overrides the node's link.
INTERNODE_GB_S = 50.0

_ALIASES = {"h100": "H100-80GB", "a100": "A100-80GB", "4090": "RTX-4090", "h200141gb": "H200"}


class UnknownGpu(KeyError):
    """A GPU name not in the catalogue; the message suggests the closest names."""

    def __str__(self) -> str:
        return str(self.args[0])


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY = {_key(g.name): g for g in CATALOGUE}


def lookup_gpu(name: str | None) -> Gpu:
    """The catalogue entry for `name`, ignoring case and punctuation ("h100_80gb" is H100-80GB).

    No name means the CPU. Raises UnknownGpu with "did you mean" suggestions."""
    key = _key(name or "cpu")
    key = _key(_ALIASES.get(key, key))
    if key in _BY_KEY:
        return _BY_KEY[key]
    names = [g.name for g in CATALOGUE]
    close = difflib.get_close_matches(name or "", names, n=3, cutoff=0.4)
    close += [n for n in names if key and key in _key(n) and n not in close]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UnknownGpu(f"unknown GPU `{name}`{hint} (known: {', '.join(names)})")


def default_efficiency(gpu: Gpu) -> Efficiency:
    return EFFICIENCY[gpu.name]
