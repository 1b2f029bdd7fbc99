"""Prompts, the held-out split, the parser, the renderer and the datasets of the shapes world."""
from __future__ import annotations

import torch

from runtime.shapes import data, render, world
from runtime.shapes.world import Attributes, all_attributes, parse_prompt, prompts, split_of


def test_every_prompt_parses_back_to_its_attributes():
    for attrs in all_attributes():
        assert parse_prompt(attrs.prompt) == attrs
    assert parse_prompt("A Blue triangle, moving UP on a white background") == Attributes("triangle", "blue", "up", "white")
    assert parse_prompt("a cat on the beach") is None


def test_split_holds_out_combinations_whose_parts_are_all_seen():
    train = [a for a in all_attributes() if split_of(a) == "train"]
    test = [a for a in all_attributes() if split_of(a) == "test"]
    assert 0.08 < len(test) / len(all_attributes()) < 0.25
    combos = lambda split: {(a.shape, a.colour, a.direction) for a in split}  # noqa: E731
    assert not combos(train) & combos(test)  # whole combinations are held out, whatever the background
    for field in ("shape", "colour", "direction", "background"):
        assert {getattr(a, field) for a in test} <= {getattr(a, field) for a in train}


def test_prompts_are_deterministic_and_respect_the_split():
    first = prompts(40, "test", seed=3)
    assert first == prompts(40, "test", seed=3) and first != prompts(40, "test", seed=4)
    assert all(split_of(parse_prompt(p)) == "test" for p in first)
    assert len(set(prompts(64, "train"))) == 64  # cycles through combinations before repeating


def test_render_is_a_shape_moving_at_constant_speed_inside_the_frame():
    attrs = Attributes("circle", "red", "left", "white")
    video = render.render(attrs, frames=8, size=16, seed=5)
    assert video.shape == (8, 3, 16, 16) and video.min() >= -1 and video.max() <= 1
    assert torch.equal(video, render.render(attrs, 8, 16, seed=5))
    assert torch.equal(video[0, :, 0, 0], torch.tensor([1.0, 1.0, 1.0]))  # white background
    c = render.centres(attrs, 8, 16, seed=5)
    steps = c[1:] - c[:-1]
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-5) and steps[0, 1] < 0 and steps[0, 0] == 0
    radius = render.RADIUS * 16
    assert bool((c - radius >= 0).all() and (c + radius <= 16).all())
    red = (video[:, 0] > 0.9) & (video[:, 1] < -0.9)
    assert red.flatten(1).sum(1).float().mean() > 20  # a shape-sized red blob in every frame


def test_videos_are_deterministic_captioned_renders():
    p1, v1 = data.videos(6, seed=1, frames=5, size=24)
    p2, v2 = data.videos(6, seed=1, frames=5, size=24)
    assert p1 == p2 and torch.equal(v1, v2) and v1.shape == (6, 5, 3, 24, 24)
    assert all(split_of(parse_prompt(p)) == "train" for p in p1)
    _, test_videos = data.videos(3, seed=1, split="test")
    assert test_videos.shape == (3, 8, 3, 16, 16)
    assert data.reference_video(p1[0], 5, 24).shape == (5, 3, 24, 24)
    assert data.prompts is world.prompts
