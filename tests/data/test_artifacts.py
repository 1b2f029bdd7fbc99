"""Artifacts jobs hand each other: video sets, pairs, labels; atomic writes; exact or decoded reads."""
from __future__ import annotations

import json

import pytest
import torch

from runtime.data import (DataError, LabelSet, PairSet, VideoSet, put_labels, put_pairs, read_labels, read_pairs,
                          read_pairs_jsonl, read_video_set, write_labels, write_pairs, write_video_set)
from vpolang.atomic import atomic_folder, atomic_path

from .conftest import moving_square

FP16 = 1e-3  # exact tensors are stored as float16: 2^-11 relative, well below a uint8 step
MP4 = 0.06   # mean absolute error of the lossy mp4 clips


def clips(n, frames=4, h=16, w=16):
    return torch.stack([moving_square(frames, h, w, seed=i) for i in range(n)])


def test_video_set_round_trip_exact_and_decoded(tmp_path):
    videos = clips(3, h=17, w=21)  # odd sizes: the mp4s are padded, the reader crops back
    written = VideoSet(["a", "b", "c"], videos, seeds=[7, 8, 9], groups=[0, 0, 1])
    folder = write_video_set(tmp_path / "set", written, extra=[{"score": i / 2} for i in range(3)])
    exact = read_video_set(folder)
    assert exact.prompts == ["a", "b", "c"] and exact.seeds == [7, 8, 9] and exact.groups == [0, 0, 1]
    assert exact.ids == ["000000", "000001", "000002"] and (exact.videos - videos).abs().max() < FP16
    decoded = read_video_set(folder, exact=False)
    assert decoded.videos.shape == videos.shape and (decoded.videos - videos).abs().mean() < MP4
    index = [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()]
    assert index[2] == {"id": "000002", "prompt": "c", "path": "videos/000002.mp4", "size": [4, 17, 21],
                        "seed": 9, "group": 1, "score": 1.0}
    assert sorted(p.name for p in (folder / "videos").iterdir()) == ["000000.mp4", "000001.mp4", "000002.mp4"]


def test_video_set_without_tensors_and_resampled(tmp_path):
    folder = write_video_set(tmp_path / "set", VideoSet(["a", "b"], clips(2, frames=6)), exact=False)
    assert not (folder / "tensors.safetensors").exists()
    back = read_video_set(folder, frames=3, resolution=(8, 8))
    assert back.videos.shape == (2, 3, 3, 8, 8)


def test_pairs_artifact_round_trip_and_readable_as_a_pairs_file(tmp_path):
    winners, losers = clips(2), clips(2).flip(1)
    meta = [{"winner_score": 0.9, "loser_score": 0.1}, {"winner_score": 0.7, "loser_score": 0.2}]
    folder = write_pairs(tmp_path / "pairs", ["p0", "p1"], winners, losers, meta)
    pairs = read_pairs(folder)
    prompts, chosen, rejected = pairs
    assert prompts == ["p0", "p1"] and pairs.meta == meta
    assert (chosen - winners).abs().max() < FP16 and (rejected - losers).abs().max() < FP16
    as_file = read_pairs_jsonl(folder / "pairs.jsonl", frames=4, resolution=(16, 16))  # what `pairs(file)` reads
    assert as_file.prompts == prompts and (as_file.rejected - losers).abs().mean() < MP4
    assert (read_pairs(folder, exact=False).chosen - winners).abs().mean() < MP4


def test_pairs_and_labels_share_one_artifact_folder(tmp_path):
    videos = clips(4)
    with atomic_folder(tmp_path / "judged") as tmp:
        put_pairs(tmp, PairSet(["p", "q"], videos[:2], videos[2:]))
        put_labels(tmp, LabelSet(["p", "p", "q", "q"], videos, ["good", "bad", 0.5, "normal"]))
    pairs, labels = read_pairs(tmp_path / "judged"), read_labels(tmp_path / "judged")
    assert pairs.prompts == ["p", "q"] and (pairs.rejected - videos[2:]).abs().max() < FP16
    assert labels.labels == ["good", "bad", 0.5, "normal"] and (labels.videos - videos).abs().max() < FP16
    assert len(list((tmp_path / "judged" / "videos").iterdir())) == 8


def test_labels_artifact_keeps_meta(tmp_path):
    labels = LabelSet(["a", "b"], clips(2), ["good", 0.1], meta=[{"judge": "x"}, {"judge": "y"}])
    back = read_labels(write_labels(tmp_path / "labels", labels))
    assert back.labels == ["good", 0.1] and back.meta == [{"judge": "x"}, {"judge": "y"}]


def test_a_failed_write_leaves_the_previous_artifact_whole(tmp_path):
    folder = write_pairs(tmp_path / "pairs", ["old"], clips(1), clips(1))
    with pytest.raises(RuntimeError, match="judge crashed"):
        with atomic_folder(folder) as tmp:
            put_pairs(tmp, PairSet(["new"], clips(1), clips(1)))
            raise RuntimeError("judge crashed")
    assert read_pairs(folder).prompts == ["old"]
    assert [p.name for p in tmp_path.iterdir()] == ["pairs"]  # no temporary folder left


def test_a_rewrite_replaces_the_artifact(tmp_path):
    write_pairs(tmp_path / "pairs", ["old", "old"], clips(2), clips(2))
    write_pairs(tmp_path / "pairs", ["new"], clips(1), clips(1))
    assert read_pairs(tmp_path / "pairs").prompts == ["new"]
    assert len(list((tmp_path / "pairs" / "videos").iterdir())) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["pairs"]


def test_atomic_path_never_shows_a_partial_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("complete")
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise OSError("disk full")
    assert target.read_text() == "complete" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_damaged_artifacts_raise_data_errors(tmp_path):
    folder = write_pairs(tmp_path / "pairs", ["p"], clips(1), clips(1))
    (folder / "pairs.safetensors").write_bytes(b"garbage")
    with pytest.raises(DataError, match="pairs.safetensors: damaged tensors file"):
        read_pairs(folder)
    (folder / "pairs.safetensors").unlink()
    (folder / "pairs.jsonl").write_text('{"id": "000000", "prompt": "p"}\n')
    with pytest.raises(DataError, match=r"pairs.jsonl:1: missing field \"chosen\""):
        read_pairs(folder)
    with pytest.raises(DataError, match="nothing/pairs.jsonl: file does not exist"):
        read_pairs(tmp_path / "nothing")


def test_video_set_ids_must_be_usable_file_names():
    with pytest.raises(ValueError, match="unique"):
        VideoSet(["a", "b"], clips(2), ids=["x", "x"])
    with pytest.raises(ValueError, match="no '/'"):
        VideoSet(["a"], clips(1), ids=["../escape"])
