"""Subject and background consistency on videos whose subject or background changes."""
from __future__ import annotations

import pytest
import torch

from runtime.rewards.backbones import ShapesPatches, load_backbone
from runtime.rewards.feature_consistency import FeatureConsistencyReward, border_mask, frame_consistency

from .conftest import noise_video, square_video


def test_frame_consistency_of_identical_and_changing_features():
    same = torch.ones(4, 5)
    assert float(frame_consistency(same)) == pytest.approx(1.0)
    assert float(frame_consistency(torch.ones(1, 5))) == 1.0
    flipped = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # orthogonal neighbours
    # to first: [0, 1] -> 0.5; to previous: [0, 0] -> 0; mean 0.25
    assert float(frame_consistency(flipped)) == 0.25
    assert float(frame_consistency(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))) == 0.0  # floored at 0


def test_border_mask_is_the_outer_ring():
    mask = border_mask((4, 4)).view(4, 4)
    assert int(mask.sum()) == 12 and not bool(mask[1:3, 1:3].any())


def test_static_video_is_fully_consistent_with_either_backbone(models):
    video = square_video(frames=4, size=32, step=0.0)[None]
    for backbone in (ShapesPatches(), load_backbone(str(models["dinov2"]))):
        for target in ("subject", "background"):
            out = FeatureConsistencyReward(target, backbone)(video, ["p"])
            assert torch.allclose(out[f"{target}_consistency"], torch.ones(1), atol=1e-5)


def test_a_changing_background_lowers_background_consistency_but_not_a_fixed_one():
    moving_subject = square_video(frames=6, size=32, step=2.0, start=6)  # stays off the border
    changing_background = square_video(frames=6, size=32, step=0.0)
    changing_background[3:, :, :6] = 0.9  # the top rows repaint halfway through
    reward = FeatureConsistencyReward("background", ShapesPatches())
    fixed, changed = reward(torch.stack([moving_subject, changing_background]), ["p", "p"])["background_consistency"]
    assert float(fixed) > 0.999
    assert float(changed) < 0.99


def test_noise_is_less_subject_consistent_than_a_moving_square(models):
    videos = torch.stack([square_video(frames=6, size=32, step=1.0), noise_video(frames=6, size=32)])
    for backbone in (ShapesPatches(), load_backbone(str(models["dinov2"]))):
        square, noise = FeatureConsistencyReward("subject", backbone)(videos, ["p", "p"])["subject_consistency"]
        assert square > noise


def test_weights_put_the_reward_on_the_gpu_list(models):
    assert FeatureConsistencyReward("subject", ShapesPatches()).needs.device == "cpu"
    heavy = FeatureConsistencyReward("subject", load_backbone(str(models["dinov2"])))
    assert heavy.needs.device == "gpu" and heavy.needs.memory_gib > 0
