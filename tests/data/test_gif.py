"""GIFs and sample grids for reports."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageSequence

from runtime.data import grid, save_gif

from .conftest import moving_square


def test_grid_tiles_row_by_row_with_padding():
    videos = torch.stack([torch.full((2, 3, 4, 5), v) for v in (-1.0, -0.5, 0.0)])
    out = grid(videos, cols=2, pad=1, fill=1.0)
    assert out.shape == (2, 3, 2 * 5 + 1, 2 * 6 + 1)
    assert out[0, 0, 1, 1] == -1.0 and out[0, 0, 1, 7] == -0.5 and out[0, 0, 6, 1] == 0.0
    assert out[0, 0, 0, 0] == 1.0 and out[0, 0, 6, 7] == 1.0  # the empty fourth tile stays padding


def test_save_gif_writes_every_frame_scaled(tmp_path):
    video = moving_square(5, 16, 24)
    path = save_gif(video, tmp_path / "sample.gif", fps=10, scale=3)
    with Image.open(path) as gif:
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]
        assert gif.info["duration"] == 100 and gif.info.get("loop") == 0
    assert len(frames) == 5 and frames[0].size == (72, 48)
    first = torch.from_numpy(np.array(frames[0])).float()[::3, ::3]
    expected = ((video[0].permute(1, 2, 0) + 1) * 127.5)
    assert (first - expected).abs().mean() < 6  # GIF palettes quantise to 256 colours


def test_save_gif_of_several_videos_makes_a_grid(tmp_path):
    path = save_gif(torch.stack([moving_square(3, 8, 8, seed=i) for i in range(4)]), tmp_path / "grid.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (2 * 10 + 2, 2 * 10 + 2)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.gif"]
