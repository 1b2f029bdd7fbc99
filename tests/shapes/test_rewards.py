"""The exact rewards on rendered videos and on videos broken in known ways."""
from __future__ import annotations

import pytest
import torch

from runtime.shapes import rewards
from runtime.shapes.render import render
from runtime.shapes.world import OPPOSITE, all_attributes


@pytest.fixture(scope="module")
def rendered():
    attrs = all_attributes()
    videos = torch.stack([render(a, 8, 16, seed=i) for i, a in enumerate(attrs)])
    return videos, [a.prompt for a in attrs], attrs


def blur(videos: torch.Tensor) -> torch.Tensor:
    flat = torch.nn.functional.avg_pool2d(videos.flatten(0, 1), 3, 1, 1, count_include_pad=False)
    return flat.view_as(videos)


def test_rendered_videos_score_about_one(rendered):
    videos, prompts, _ = rendered
    for name, fn in rewards.METRICS.items():
        scores = fn(videos, prompts)
        assert scores.shape == (len(prompts),) and scores.dtype == torch.float32
        assert float(scores.min()) > 0.95, name


def test_alignment_recovers_each_attribute(rendered):
    videos, prompts, attrs = rendered
    for video, a in zip(videos, attrs):
        mask = rewards.foreground(video)
        assert (rewards.colour_of(video, mask), rewards.shape_of(mask), rewards.motion_direction(video)) == \
            (a.colour, a.shape, a.direction)


def test_alignment_is_a_partial_score(rendered):
    videos, prompts, attrs = rendered
    other_colour = [p.replace(a.colour, "green" if a.colour != "green" else "red") for p, a in zip(prompts, attrs)]
    assert rewards.alignment(videos, other_colour).tolist() == pytest.approx([2 / 3] * len(prompts), abs=1e-3)
    other_shape = [p.replace(a.shape, "square" if a.shape != "square" else "circle") for p, a in zip(prompts, attrs)]
    assert rewards.alignment(videos, other_shape).tolist() == pytest.approx([2 / 3] * len(prompts), abs=1e-3)
    assert rewards.alignment(videos[:2], ["a cat", "the sea"]).tolist() == [0.0, 0.0]


def test_a_reversed_video_moves_the_wrong_way(rendered):
    videos, prompts, attrs = rendered
    reversed_ = videos.flip(1)
    assert rewards.wrong_direction_rate(reversed_, prompts) == 1.0
    assert rewards.wrong_direction_rate(videos, prompts) == 0.0
    assert all(rewards.motion_direction(v) == OPPOSITE[a.direction] for v, a in zip(reversed_, attrs))
    assert rewards.alignment(reversed_, prompts).tolist() == pytest.approx([2 / 3] * len(prompts), abs=1e-3)


def test_noise_and_empty_videos_score_low(rendered):
    videos, prompts, _ = rendered
    noise = torch.rand(videos.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for name, fn in rewards.METRICS.items():
        assert float(fn(noise, prompts).max()) < 0.1, name
    blank = torch.zeros_like(videos)
    assert float(rewards.alignment(blank, prompts).max()) == 0.0
    assert rewards.motion_direction(blank[0]) is None
    assert float(rewards.flicker(blank).min()) == 1.0  # nothing changes, so nothing flickers


def test_smoothness_needs_constant_velocity(rendered):
    videos, _, _ = rendered
    shuffled = videos[:, torch.tensor([0, 4, 2, 6, 1, 7, 3, 5])]
    assert float(rewards.smoothness(shuffled).max()) < 0.1
    static = videos[:, :1].expand_as(videos)
    assert float(rewards.smoothness(static).min()) > 0.95  # constant velocity zero is smooth
    assert rewards.motion_direction(static[0]) is None


def test_flicker_and_sharpness_respond_to_their_defects(rendered):
    videos, _, _ = rendered
    gen = torch.Generator().manual_seed(1)
    jitter = 0.3 * torch.randn(videos.shape[0], videos.shape[1], 1, 1, 1, generator=gen)  # global brightness
    flickering = (videos + jitter).clamp(-1, 1)
    assert float(rewards.flicker(flickering).mean()) < float(rewards.flicker(videos).mean()) - 0.3
    soft = rewards.sharpness(blur(videos))
    assert float(soft.max()) < 0.6 and float(rewards.sharpness(blur(blur(videos))).mean()) < float(soft.mean())
    grainy = (videos + 0.2 * torch.randn(videos.shape, generator=gen)).clamp(-1, 1)
    assert float(rewards.sharpness(grainy).max()) < 0.2


def test_a_blurred_video_still_reads_right(rendered):
    videos, prompts, _ = rendered
    assert float(rewards.alignment(blur(videos), prompts).min()) > 0.95
