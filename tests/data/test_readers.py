"""Readers of the user's files: prompts, captioned videos, pairs and labels; errors name file and line."""
from __future__ import annotations

import json

import pytest
import torch

from runtime.data import (DataError, index_captioned_videos, read_captioned_videos, read_labels_jsonl,
                          read_pairs_jsonl, read_prompts, write_video)

from .conftest import moving_square

TOL = 2 / 255 + 1e-6


def jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


# ---- prompts -------------------------------------------------------------------------------------
def test_prompt_txt_skips_blank_lines_and_comments(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# training prompts\n a red ball bounces \n\n#skip\na cat\n")
    assert read_prompts(path) == ["a red ball bounces", "a cat"]


def test_prompt_jsonl(tmp_path):
    path = jsonl(tmp_path / "p.jsonl", [{"prompt": "a dog", "id": 3}, "", {"prompt": "a boat "}])
    assert read_prompts(path) == ["a dog", "a boat"]


@pytest.mark.parametrize("lines, where, message", [
    (['{"prompt": "ok"}', '{"prompt": "ok"', '{"prompt": "x"}'], ":2:", "not valid JSON"),
    (['{"prompt": "ok"}', '{"text": "no prompt"}'], ":2:", 'missing field "prompt"'),
    (['{"prompt": 7}'], ":1:", 'field "prompt" must be str'),
    (['["a list"]'], ":1:", "expected a JSON object"),
    (['{"prompt": "  "}'], ":1:", "empty prompt"),
])
def test_malformed_prompt_jsonl_names_file_and_line(tmp_path, lines, where, message):
    path = jsonl(tmp_path / "p.jsonl", lines)
    with pytest.raises(DataError, match=message) as err:
        read_prompts(path)
    assert str(err.value).startswith(f"{path}{where}") and err.value.line == int(where.strip(":"))


def test_empty_missing_and_binary_prompt_files_name_the_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(DataError, match=f"^{empty}: prompt file has no prompts"):
        read_prompts(empty)
    with pytest.raises(DataError, match="missing.txt: prompt file does not exist"):
        read_prompts(tmp_path / "missing.txt")
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="b.txt: not UTF-8"):
        read_prompts(binary)


# ---- captioned videos ----------------------------------------------------------------------------
def test_captions_jsonl_paths_are_relative_to_it(tmp_path):
    clips = [moving_square(6, 20, 20, seed=i) for i in range(3)]
    for i, clip in enumerate(clips):
        write_video(tmp_path / "media" / f"v{i}.avi", clip)
    captions = [{"video": f"../media/v{i}.avi", "caption": f"clip {i}"} for i in range(3)]
    jsonl(tmp_path / "meta" / "captions.jsonl", captions)
    videos = read_captioned_videos("media/*.avi", "meta/captions.jsonl", tmp_path, frames=3, resolution=(16, 16))
    prompts, tensors = videos
    assert prompts == ["clip 0", "clip 1", "clip 2"] and tensors.shape == (3, 3, 3, 16, 16)
    # 20x20 scaled to 16x16 (no crop): compare against the source downscaled the same way
    expected = torch.nn.functional.interpolate(clips[1][[0, 2, 5]], size=(16, 16), mode="area")
    assert (tensors[1] - expected).abs().mean() < 0.02


def test_captions_by_bare_name_and_sidecar_txt(tmp_path):
    for name in ("a", "b", "c"):
        write_video(tmp_path / "clips" / f"{name}.avi", moving_square(4, 16, 16))
    jsonl(tmp_path / "captions.jsonl", [{"video": "a.avi", "caption": "from the captions file"}])
    (tmp_path / "clips" / "b.txt").write_text("  from a sidecar \n")
    (tmp_path / "clips" / "c.txt").write_text("c's own caption")
    index = index_captioned_videos("clips/*", "captions.jsonl", tmp_path)  # the glob also matches .txt files
    assert [(p.name, c) for p, c in index] == [("a.avi", "from the captions file"), ("b.avi", "from a sidecar"),
                                               ("c.avi", "c's own caption")]


def test_frame_folders_are_videos_too(tmp_path):
    write_video(tmp_path / "set" / "clip0", moving_square(5, 16, 16))
    (tmp_path / "set" / "clip0.txt").write_text("a folder of frames")
    prompts, videos = read_captioned_videos("set/*", None, tmp_path, frames=5, resolution=(16, 16))
    assert prompts == ["a folder of frames"] and (videos[0] - moving_square(5, 16, 16)).abs().max() < TOL


def test_uncaptioned_video_and_empty_glob_are_named(tmp_path):
    write_video(tmp_path / "v.avi", moving_square(2, 16, 16))
    jsonl(tmp_path / "captions.jsonl", [{"video": "other.avi", "caption": "x"}])
    with pytest.raises(DataError, match=r"v.avi: video has no caption: not in captions.jsonl and no non-empty v.txt"):
        index_captioned_videos("*.avi", "captions.jsonl", tmp_path)
    with pytest.raises(DataError, match=r"\*.mp4: no videos match"):
        index_captioned_videos("*.mp4", None, tmp_path)
    jsonl(tmp_path / "bad.jsonl", [{"video": "v.avi", "caption": "x"}, {"video": "v.avi"}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: expected"):
        index_captioned_videos("*.avi", "bad.jsonl", tmp_path)


# ---- pairs ---------------------------------------------------------------------------------------
def pairs_file(tmp_path):
    clips = {f"v{i}": moving_square(4, 16, 16, seed=i) for i in range(4)}
    for name, clip in clips.items():
        write_video(tmp_path / "data" / "videos" / f"{name}.avi", clip)
    path = jsonl(tmp_path / "data" / "pairs.jsonl", [
        {"prompt": "p0", "chosen": "videos/v0.avi", "rejected": "videos/v1.avi"},
        {"prompt": "p1", "chosen": "videos/v2.avi", "rejected": "videos/v3.avi", "tie": True},
        {"prompt": "p2", "chosen": "videos/v3.avi", "rejected": "videos/v0.avi", "tie": False, "source": "human"},
    ])
    return path, clips


def test_pairs_jsonl_resolves_videos_beside_the_file_and_drops_ties(tmp_path):
    path, clips = pairs_file(tmp_path)
    pairs = read_pairs_jsonl(path, frames=4, resolution=(16, 16))
    prompts, chosen, rejected = pairs
    assert prompts == ["p0", "p2"] and pairs.ties == [False, False]
    assert (chosen[1] - clips["v3"]).abs().max() < TOL and (rejected[1] - clips["v0"]).abs().max() < TOL


def test_pairs_jsonl_can_keep_ties(tmp_path):
    path, _ = pairs_file(tmp_path)
    pairs = read_pairs_jsonl(path, frames=2, resolution=(8, 8), keep_ties=True)
    assert pairs.ties == [False, True, False] and pairs.chosen.shape == (3, 2, 3, 8, 8)
    assert len(pairs.without_ties()) == 2


@pytest.mark.parametrize("record, message", [
    ({"prompt": "p", "chosen": "videos/v0.avi", "rejected": "videos/gone.avi"},
     "rejected video: .*gone.avi: video does not exist"),
    ({"prompt": "p", "chosen": "videos/v0.avi"}, 'missing field "rejected"'),
    ({"prompt": "p", "chosen": "videos/v0.avi", "rejected": "videos/v1.avi", "tie": "yes"}, 'field "tie" must be bool'),
])
def test_pairs_errors_name_file_and_line(tmp_path, record, message):
    path, _ = pairs_file(tmp_path)
    path.write_text(path.read_text() + json.dumps(record) + "\n")
    with pytest.raises(DataError, match=message) as err:
        read_pairs_jsonl(path, 2, (8, 8))
    assert str(err.value).startswith(f"{path}:4:")


def test_a_pairs_file_of_ties_only_has_no_pairs(tmp_path):
    path, _ = pairs_file(tmp_path)
    jsonl(path, [{"prompt": "p", "chosen": "videos/v0.avi", "rejected": "videos/v1.avi", "tie": True}])
    with pytest.raises(DataError, match="pairs file has no pairs"):
        read_pairs_jsonl(path, 2, (8, 8))


# ---- labels --------------------------------------------------------------------------------------
def test_labels_jsonl_categories_and_scores(tmp_path):
    for i in range(3):
        write_video(tmp_path / "clips" / f"v{i}.avi", moving_square(4, 16, 16, seed=i))
    path = jsonl(tmp_path / "labels.jsonl", [
        {"prompt": "a", "video": "clips/v0.avi", "label": "good"},
        {"prompt": "b", "video": "clips/v1.avi", "label": "Bad"},
        {"prompt": "c", "video": "clips/v2.avi", "label": "normal"},
        {"prompt": "d", "video": "clips/v0.avi", "label": 0.25},
        {"prompt": "e", "video": "clips/v1.avi", "label": 3},
    ])
    labels = read_labels_jsonl(path, frames=2, resolution=(16, 16))
    prompts, videos, values = labels
    assert prompts == list("abcde") and videos.shape == (5, 2, 3, 16, 16)
    assert values == ["good", "bad", "normal", 0.25, 3.0]
    assert labels.desirable(threshold=0.5).tolist() == [True, False, True, False, True]
    with pytest.raises(ValueError, match="threshold"):
        labels.desirable()


@pytest.mark.parametrize("label", ["great", True, None, float("nan")])
def test_bad_labels_name_file_and_line(tmp_path, label):
    write_video(tmp_path / "v.avi", moving_square(2, 16, 16))
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"prompt": "a", "video": "v.avi", "label": "good"}) + "\n"
                    + json.dumps({"prompt": "b", "video": "v.avi", "label": label}) + "\n")
    with pytest.raises(DataError, match="label") as err:
        read_labels_jsonl(path, 2, (8, 8))
    assert str(err.value).startswith(f"{path}:2:")
