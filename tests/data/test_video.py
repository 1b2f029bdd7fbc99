"""Video files <-> tensors: codecs, frame sampling, resize/crop, and errors that name the file."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from runtime.data import DataError, read_video, write_video
from runtime.data import video as video_module
from runtime.data.video import fit, sample_indices

from .conftest import frame_id_video, id_of, moving_square

UINT8_STEP = 2 / 255


def test_mp4_round_trip_stays_within_codec_tolerance(tmp_path):
    clip = moving_square(8, 32, 48)
    written = write_video(tmp_path / "clip.mp4", clip, fps=8)
    back = read_video(written)
    assert written == tmp_path / "clip.mp4" and back.shape == clip.shape
    assert (back - clip).abs().mean() < 0.05  # MPEG-4 part 2 with 4:2:0 chroma: a few grey levels


@pytest.mark.parametrize("name", ["clip.avi", "clip"])
def test_avi_and_png_folders_are_lossless_to_a_uint8_step(tmp_path, name):
    clip = moving_square(5, 24, 40)
    back = read_video(write_video(tmp_path / name, clip))
    assert back.shape == clip.shape
    assert (back - clip).abs().max() <= UINT8_STEP / 2 + 1e-6


def test_odd_sizes_are_padded_by_repeating_the_edge(tmp_path):
    clip = moving_square(4, 17, 23)
    back = read_video(write_video(tmp_path / "odd.avi", clip))
    assert back.shape == (4, 3, 18, 24)
    assert (back[:, :, :17, :23] - clip).abs().max() <= UINT8_STEP
    assert torch.equal(back[:, :, 17], back[:, :, 16]) and torch.equal(back[..., 23], back[..., 22])


def test_webm_from_another_encoder_is_read(tmp_path):
    path = tmp_path / "clip.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 8, (32, 32))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot encode VP8")
    for i in range(6):
        writer.write(np.full((32, 32, 3), 40 * i, np.uint8))
    writer.release()
    back = read_video(path, frames=3, resolution=(16, 16))
    assert back.shape == (3, 3, 16, 16)
    assert [round(float((f.mean() + 1) * 127.5) / 40) for f in back] == [0, 2, 5]


def test_frames_are_taken_evenly_first_and_last_included(tmp_path):
    path = write_video(tmp_path / "ids.avi", frame_id_video(10))
    assert [id_of(f) for f in read_video(path, frames=4)] == [0, 3, 6, 9]
    assert [id_of(f) for f in read_video(path, frames=1)] == [0]
    assert [id_of(f) for f in read_video(path)] == list(range(10))


def test_a_short_video_repeats_frames(tmp_path):
    path = write_video(tmp_path / "ids", frame_id_video(3))  # PNG frames
    assert [id_of(f) for f in read_video(path, frames=6)] == [0, 0, 1, 1, 2, 2]
    assert sample_indices(3, 6) == [0, 0, 1, 1, 2, 2]


def test_an_over_reported_length_is_recounted(tmp_path, monkeypatch):
    path = write_video(tmp_path / "ids.avi", frame_id_video(8))
    monkeypatch.setattr(video_module, "_frame_count", lambda p: 12)  # as some containers claim
    assert [id_of(f) for f in read_video(path, frames=3)] == [0, 4, 7]


def test_resize_covers_then_crops_the_centre():
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :20] = (255, 0, 0)  # left quarter red, right quarter blue, middle green
    img[:, 20:60] = (0, 255, 0)
    img[:, 60:] = (0, 0, 255)
    out = fit(img, (20, 20))
    assert out.shape == (20, 20, 3)
    assert (out[..., 1] > 250).all() and (out[..., 0] < 5).all() and (out[..., 2] < 5).all()
    tall = fit(img, (60, 30))  # enlarge to 60 high (120 wide), keep the middle 30 columns
    assert tall.shape == (60, 30, 3) and (tall[..., 1] > 250).all()


def test_resolution_is_applied_when_reading(tmp_path):
    path = write_video(tmp_path / "clip", moving_square(4, 30, 50))
    assert read_video(path, frames=2, resolution=(16, 24)).shape == (2, 3, 16, 24)


def test_frame_folders_sort_naturally(tmp_path):
    clip = frame_id_video(12)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(clip):
        img = ((frame.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"frame{i}.png"), img)  # frame10 sorts after frame9
    (folder / "notes.txt").write_text("not a frame")
    assert [id_of(f) for f in read_video(folder)] == list(range(12))


def test_missing_and_unreadable_videos_name_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.mp4: video does not exist"):
        read_video(tmp_path / "nope.mp4")
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(DataError, match="fake.mp4: cannot open video"):
        read_video(fake)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty: folder has no frame images"):
        read_video(empty)
    (empty / "0.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="0.png: cannot read image"):
        read_video(empty)


def test_writing_refuses_unknown_containers_and_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=".mkv"):
        write_video(tmp_path / "x.mkv", moving_square(2))
    with pytest.raises(ValueError, match="expected a video"):
        write_video(tmp_path / "x.mp4", torch.zeros(2, 4, 8, 8))


def test_without_the_codec_a_png_folder_is_written(tmp_path, monkeypatch):
    def no_codec(path, frames, fps, fourcc):
        raise video_module.CodecUnavailable(fourcc)

    monkeypatch.setattr(video_module, "_encode", no_codec)
    clip = moving_square(3, 16, 16)
    written = write_video(tmp_path / "clip.mp4", clip)
    assert written == tmp_path / "clip" and written.is_dir() and not (tmp_path / "clip.mp4").exists()
    assert (read_video(written) - clip).abs().max() <= UINT8_STEP
    assert [p.name for p in tmp_path.iterdir()] == ["clip"]  # no temporary file left behind
