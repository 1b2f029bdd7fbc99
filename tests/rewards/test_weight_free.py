"""Weight-free rewards on synthetic videos whose answer is known."""
from __future__ import annotations

import pytest
import torch

from runtime.rewards import weight_free as wf

from .conftest import noise_video, smooth_pattern_video, square_video


def batch(*videos):
    return torch.stack(videos)


def test_static_video_has_no_flow_and_no_dynamics():
    static = batch(square_video(step=0.0))
    assert float(wf.flow_magnitudes(static).max()) < 1e-3
    assert float(wf.flow_magnitude(static)) < 1e-3
    assert float(wf.dynamic_degree(static)) == 0.0


def test_moving_square_has_flow_and_every_step_is_dynamic():
    moving = batch(square_video(step=2.0))
    assert float(wf.flow_magnitude(moving)) > 0.05
    assert float(wf.dynamic_degree(moving)) == 1.0


def test_faster_motion_has_more_flow():
    slow, fast = wf.flow_magnitude(batch(square_video(step=0.5), square_video(step=2.0)))
    assert fast > slow


def test_dynamic_degree_counts_the_fraction_of_moving_steps():
    video = square_video(frames=9, step=0.0)
    moved = square_video(frames=9, step=3.0)
    video[5:] = moved[5:]  # still for 4 steps, then it jumps and moves for the remaining 4
    assert float(wf.dynamic_degree(batch(video))) == pytest.approx(0.5)


def test_flickering_video_scores_low_on_flicker():
    steady, flickering = wf.temporal_flicker(batch(square_video(), square_video(flicker=0.8)))
    assert steady > 0.9
    assert flickering < 0.3
    assert float(wf.temporal_flicker(batch(square_video(step=0.0)))) == 1.0


def test_noise_is_not_smooth_and_constant_velocity_is():
    linear, noise = wf.motion_smoothness(batch(smooth_pattern_video(), noise_video()))
    assert linear > 0.9
    assert noise < 0.1


def test_sharpness_prefers_texture_to_its_blur():
    sharp = smooth_pattern_video(speed=0.0)
    blurred = torch.nn.functional.avg_pool2d(sharp, 5, stride=1, padding=2, count_include_pad=False)
    flat = torch.zeros_like(sharp)
    s_sharp, s_blur, s_flat = wf.sharpness(batch(sharp, blurred, flat))
    assert s_sharp > s_blur > s_flat
    assert float(s_flat) == 0.0


@pytest.mark.parametrize("metric", sorted(wf.METRICS))
def test_every_metric_is_deterministic_and_in_unit_range(metric):
    videos = batch(square_video(step=1.5), noise_video(), square_video(flicker=0.5), smooth_pattern_video())
    first = wf.METRICS[metric](videos, 48)
    again = wf.METRICS[metric](videos.clone(), 48)
    assert torch.equal(first, again)
    assert first.shape == (4,) and first.dtype == torch.float32
    assert bool(((first >= 0) & (first <= 1)).all())


@pytest.mark.parametrize("metric", sorted(wf.METRICS))
def test_single_frame_videos_are_defined(metric):
    out = wf.METRICS[metric](batch(square_video(frames=1)), 32)
    assert out.shape == (1,) and torch.isfinite(out).all()


def test_weight_free_reward_speaks_the_protocol():
    reward = wf.WeightFreeReward("temporal_flicker", resize=32)
    videos = batch(square_video(), square_video(flicker=0.8))
    out = reward(videos, ["a", "b"])
    assert set(out) == {"temporal_flicker"} and reward.heads == ("temporal_flicker",)
    assert torch.equal(out["temporal_flicker"], wf.temporal_flicker(videos, 32))
    # no weights, yet it follows the rollouts to their GPU: shrinking frames there beats copying them out
    assert reward.needs.device == "gpu"
    assert reward.to("cuda:0").device == torch.device("cuda:0")


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown weight-free metric"):
        wf.WeightFreeReward("colourfulness")
