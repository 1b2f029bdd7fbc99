"""Model shapes from the compiler's lowered configs, the resolution table, clips."""
from __future__ import annotations

import pytest

from vpolang.estimate import RESOLUTIONS, Clip, VideoDiT, VisionLanguage, resolution
from vpolang.planning import build_plan
from vpolang.schema.base import RESOLUTIONS as COMPILER_RESOLUTIONS

from .common import ROOT, WAN_1_3B


@pytest.fixture(scope="module")
def teleboost_jobs() -> dict:
    result, plan = build_plan(ROOT / "examples" / "teleboost.vpo", {}, None)
    assert plan is not None, [d.message for d in result.diagnostics]
    return {job.id: job for job in plan.jobs}


def test_the_stdlib_wan_is_the_measured_architecture(teleboost_jobs):
    assert VideoDiT.from_spec(teleboost_jobs["sft"].config.model) == WAN_1_3B


def test_judges_and_reward_backbones_from_their_specs(teleboost_jobs):
    reward = teleboost_jobs["rl"].config.reward.rewards[0]["spec"]["model"]["spec"]  # VideoAlign's Qwen2-VL-2B
    vlm = VisionLanguage.from_spec(reward)
    assert (vlm.params, vlm.layers, vlm.hidden, vlm.tokens_per_frame) == (2_200_000_000, 28, 1536, 64)
    assert vlm.tokens(frames=8) == 8 * 64 + 64


def test_precision_and_prediction_come_through():
    spec = {"family": "shapes", "resolution": [16, 16], "frames": 8, "params": 752_000, "layers": 3, "hidden": 128, "heads": 4, "ffn": 256, "patch": [1, 4, 4],
            "vae_stride": [1, 1, 1], "latent_channels": 3, "text_len": 8, "text_dim": 32, "dtype": "fp32",
            "prediction": "epsilon", "sample_steps": 8}
    tiny = VideoDiT.from_spec(spec)
    assert (tiny.weight_bytes, tiny.prediction, tiny.sample_steps, tiny.patch) == (4, "epsilon", 8, (1, 4, 4))


def test_resolutions_match_the_compiler():
    assert RESOLUTIONS == {k: v for k, v in COMPILER_RESOLUTIONS.items() if int(k[:-1]) >= 240}
    assert resolution("480p") == resolution("480P") == (480, 832)
    assert resolution("720p") == (720, 1280)
    assert resolution([544, 960]) == (544, 960)
    with pytest.raises(ValueError, match="unknown resolution `4k`; known: 240p"):
        resolution("4k")
    with pytest.raises(ValueError):
        resolution((0, 832))


def test_clips():
    clip = Clip.of(33, "480p")
    assert (clip.frames, clip.height, clip.width, clip.pixels) == (33, 480, 832, 33 * 480 * 832)
    with pytest.raises(ValueError):
        Clip.of(0, "480p")
