"""Feature backbones: the weight-free shapes backbone and a tiny DINOv2 loaded from its folder."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from runtime.algorithms.vipo import advantage_map
from runtime.errors import JobError
from runtime.rewards.backbones import Dinov2Patches, ShapesPatches, load_backbone

from .conftest import square_video


def test_shapes_backbone_is_fixed_and_deterministic():
    video = square_video(frames=3, size=16)
    feats = ShapesPatches().features(video)
    assert feats.patches.shape == (3, 16, 7) and feats.grid == (4, 4)
    assert torch.equal(feats.patches, ShapesPatches().features(video.clone()).patches)
    assert torch.equal(feats.pooled, feats.patches.mean(1))
    assert bool((feats.patches[..., 0] == 1).all())  # the constant that keeps cosines defined on black


def test_shapes_backbone_gives_vipo_the_maps_of_raw_colour_statistics():
    """The constant column and the [0, 1] rescaling vanish under ViPO's centring and min-max steps."""
    video = square_video(frames=4, size=16, step=2.0)
    mean = F.avg_pool2d(video, 4)
    std = (F.avg_pool2d(video.pow(2), 4) - mean.pow(2)).clamp(min=0).sqrt()
    raw = torch.cat([mean, std], 1).flatten(2).transpose(1, 2)
    tokens, grid = ShapesPatches()(video)
    assert torch.allclose(advantage_map(tokens, grid, (2, 8, 8)), advantage_map(raw, grid, (2, 8, 8)), atol=1e-4)


def test_dinov2_loads_from_a_local_folder_and_returns_cls_and_patches(models):
    backbone = load_backbone(str(models["dinov2"]))
    assert isinstance(backbone, Dinov2Patches)
    video = square_video(frames=3, size=40)
    feats = backbone.features(video)
    assert feats.patches.shape == (3, 16, 32) and feats.grid == (4, 4) and feats.pooled.shape == (3, 32)
    # the same frames through the model by hand: resize 40 -> 32 (shortest edge), crop 32, ImageNet stats
    x = (F.interpolate((video + 1) / 2, size=(32, 32), mode="bicubic", antialias=True) -
         torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        hidden = backbone.model(pixel_values=x).last_hidden_state
    assert torch.allclose(feats.pooled, hidden[:, 0], atol=1e-5)
    assert torch.allclose(feats.patches, hidden[:, 1:], atol=1e-5)
    tokens, grid = backbone(video)
    assert torch.equal(tokens, feats.patches) and grid == (4, 4)


def test_relative_backbone_paths_are_taken_from_the_recipe_folder(models):
    folder = models["dinov2"]
    assert isinstance(load_backbone(folder.name, recipe_dir=folder.parent), Dinov2Patches)


def test_shapes_models_and_the_shapes_name_get_the_builtin_backbone(models):
    assert isinstance(load_backbone("shapes"), ShapesPatches)
    assert isinstance(load_backbone("dinov2-small", family="shapes"), ShapesPatches)


def test_a_backbone_that_is_not_a_local_folder_is_a_clear_error(tmp_path):
    with pytest.raises(JobError, match="`dinov2-small` is not a local model folder"):
        load_backbone("dinov2-small", recipe_dir=tmp_path, family="wan")
