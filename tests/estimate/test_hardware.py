"""The GPU catalogue, its tolerant lookup, and the calibration constants re-derived from the bench runs."""
from __future__ import annotations

import pytest

from vpolang.estimate import CATALOGUE, UnknownGpu, default_efficiency, lookup_gpu
from vpolang.estimate import calibration as cal

from .common import measurement


@pytest.mark.parametrize("name, tflops, memory_gib", [
    ("H100-80GB", 989, 79.6), ("H200", 989, 139.8), ("A100-80GB", 312, 79.2), ("A100-40GB", 312, 39.4),
    ("L40S", 362, 44.5), ("RTX-4090", 165, 23.6), ("A10G", 125, 22.0), ("L4", 121, 22.0),
])
def test_catalogue_peaks_and_memory(name, tflops, memory_gib):
    gpu = lookup_gpu(name)
    assert (gpu.name, gpu.bf16_tflops, gpu.memory_gib) == (name, tflops, memory_gib)
    assert gpu.usd_per_hour > 0 and gpu.interconnect in ("nvlink", "pcie")


def test_lookup_ignores_case_and_punctuation():
    assert lookup_gpu("h100_80gb").name == "H100-80GB"
    assert lookup_gpu("H100").name == "H100-80GB"
    assert lookup_gpu("rtx 4090").name == "RTX-4090"
    assert lookup_gpu("a100-40gb").name == "A100-40GB"
    assert lookup_gpu(None).name == lookup_gpu("CPU").name == "cpu"


def test_unknown_gpu_suggests_close_names():
    with pytest.raises(UnknownGpu) as info:
        lookup_gpu("H10O-80GB")
    assert "unknown GPU `H10O-80GB`; did you mean H100-80GB" in str(info.value)
    with pytest.raises(UnknownGpu, match="known: H100-80GB, H200"):
        lookup_gpu("TPU-v5")


def test_every_gpu_has_an_efficiency_with_its_source():
    for gpu in CATALOGUE:
        eff = default_efficiency(gpu)
        assert 0 < eff.inference <= 1 and 0 < eff.train <= 1 and eff.source.startswith(("measured", "assumed"))
    assert default_efficiency(lookup_gpu("H100-80GB")).source.startswith("measured")


def test_mfu_constants_come_from_the_h100_run():
    rows = {row["variant"]: row for row in measurement(cal.WAN_STEP)["rows"]}
    assert cal.TRAIN_MFU == pytest.approx(rows["eager"]["step_mfu"], rel=1e-3)
    assert cal.INFERENCE_MFU == pytest.approx(rows["eager"]["forward_mfu"], rel=1e-3)
    assert rows["eager"]["tokens"] == cal.WAN_TOKENS


def test_decoupled_time_factor_comes_from_the_dpo_run():
    rows = {(r["frames"], r["mode"]): r for r in measurement(cal.WAN_DPO)["rows"]}
    measured = rows[17, "stashed"]["step_s"] / rows[17, "standard"]["step_s"]
    assert cal.DPO_DECOUPLED_TIME_FACTOR == pytest.approx(measured, rel=1e-3)
    assert 1.0 < cal.DPO_DECOUPLED_TIME_FACTOR < 1.1
