"""DPO's mixed resolution (TeleBoost §4.3): odd steps train on pairs at about half the side and half the
duration, snapped to the VAE stride and patch grid."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from runtime.models.policy import VideoPolicy
from runtime.trainers.dpo import low_resolution
from tests.runtime.conftest import job_dir, vpo


def wan_like(stride=(4, 8, 8), patch=(1, 2, 2), odd=False):
    policy = SimpleNamespace(codec=SimpleNamespace(stride=stride, odd_latent_frames=odd, channels=16),
                             spec={"patch": list(patch)}, family="wan")
    policy.latent_shape = lambda f, h, w: VideoPolicy.latent_shape(policy, f, h, w)
    return policy


@pytest.mark.parametrize("frames, resolution, expected", [
    (33, [480, 832], (17, (240, 416))),   # Wan: 1 + 4k frames, sides on the 16-pixel grid
    (81, [720, 1280], (41, (352, 640))),
    (17, [480, 832], (9, (240, 416))),
    (5, [16, 16], (1, (16, 16))),          # never below one latent patch
])
def test_low_resolution_halves_on_the_grid(frames, resolution, expected):
    assert low_resolution(wan_like(), frames, resolution) == expected


def test_cogvideox_keeps_an_odd_number_of_latent_frames():
    frames, size = low_resolution(wan_like(odd=True), 49, [480, 720])
    assert ((frames - 1) // 4 + 1) % 2 == 1 and frames <= 25 and size == (240, 352)


RECIPE = """vpo 0.1
use std.shapes

model tiny = shapes.tiny_dit { layers = 1, hidden = 32, heads = 2, ffn = 64 }

stage tuned = dpo(tiny) {
  pairs            = synthetic(shapes.videos(n = 8, seed = 1), negatives = [reverse])
  mixed_resolution = true
  beta             = 500
  steps            = 4
  batch            = 4
  lr               = 1e-3
}
"""


def test_dpo_alternates_full_and_low_resolution_steps(tmp_path):
    (tmp_path / "r.vpo").write_text(RECIPE)
    vpo("run", tmp_path / "r.vpo", "--run-dir", tmp_path / "run", "--progress", "quiet")
    folder = job_dir(tmp_path / "run", "tuned")
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["low_resolution"] for r in records] == [0.0, 1.0, 0.0, 1.0]
    assert all(r["grad_norm"] > 0 for r in records)
    assert "odd steps at 4 frames of 8x8" in (folder / "log.txt").read_text()
