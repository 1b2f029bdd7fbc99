"""Sources as a compiled plan names them, paths relative to the recipe, artifacts through input slots."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.data import (DataError, MixtureCursor, load_labels, load_pairs, load_prompts, load_videos, resolve_path,
                          write_pairs, write_video)
from vpolang.api import check_file
from vpolang.lower import lower

from .conftest import moving_square

RECIPE = """vpo 0.1
use std.shapes

model base = shapes.tiny_dit

dataset clips = videos("data/clips/*.avi", captions = "data/captions.jsonl")

stage sft = sft(base) {
  data  = clips
  steps = 1
  lr    = 1e-4
}

stage pref = dpo(sft) {
  pairs = pairs("data/pairs.jsonl") + synthetic(clips) + pairs("data/more.jsonl")
  steps = 1
  lr    = 1e-4
}

stage kto = kto(sft) {
  labels = labels("data/labels.jsonl")
  steps  = 1
  lr     = 1e-4
}

stage rl = grpo(sft) {
  prompts    = prompts("data/prompts.txt")
  reward     = shapes.alignment
  group_size = 2
  steps      = 1
  lr         = 1e-4
}
"""


def lines(path: Path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A recipe in recipes/ with its data beside it; the plan is compiled from another directory."""
    data = tmp_path / "recipes" / "data"
    for i in range(4):
        write_video(data / "clips" / f"c{i}.avi", moving_square(10, 20, 24, seed=i))
    lines(data / "captions.jsonl", [{"video": f"clips/c{i}.avi", "caption": f"clip {i}"} for i in range(4)])
    lines(data / "pairs.jsonl", [{"prompt": f"h{i}", "chosen": f"clips/c{i}.avi", "rejected": f"clips/c{i + 1}.avi",
                                  "tie": i == 1} for i in range(3)])
    lines(data / "more.jsonl", [{"prompt": "m", "chosen": "clips/c3.avi", "rejected": "clips/c0.avi"}])
    lines(data / "labels.jsonl", [{"prompt": "l", "video": "clips/c2.avi", "label": "bad"}])
    (data / "prompts.txt").write_text("# rl prompts\na red square moves right\n")
    (tmp_path / "recipes" / "r.vpo").write_text(RECIPE)
    monkeypatch.chdir(tmp_path)
    result = check_file("recipes/r.vpo")
    assert result.ok, result.diagnostics
    plan = lower(result.recipe)
    return plan, Path(plan.recipe.path).resolve().parent


def test_resolve_path():
    assert resolve_path("data/a.txt", "/r") == Path("/r/data/a.txt")
    assert resolve_path("/abs/a.txt", "/r") == Path("/abs/a.txt")
    assert resolve_path("~/a.txt", "/r") == Path.home() / "a.txt"


def test_sources_of_a_compiled_plan_resolve_against_the_recipe(project, tmp_path):
    plan, recipe_dir = project
    assert recipe_dir == tmp_path / "recipes"
    sft, pref, kto, rl = (plan.job(j).config.model_dump() for j in ("sft", "pref", "kto", "rl"))
    prompts, videos = load_videos(sft["data"], recipe_dir, sft["frames"], sft["resolution"])
    assert prompts == ["clip 0", "clip 1", "clip 2", "clip 3"]
    assert videos.shape == (4, sft["frames"], 3, *sft["resolution"])
    assert load_prompts(rl["prompts"], recipe_dir) == ["a red square moves right"]
    labels = load_labels(kto["labels"], recipe_dir, kto["frames"], kto["resolution"], input_path=None)
    assert labels.labels == ["bad"] and labels.desirable().tolist() == [False]

    # the synthesize job's output, as the runtime would find it through the dpo job's input slot
    synthetic = tmp_path / "run" / "pairs"
    write_pairs(synthetic, ["s0", "s1", "s2"], videos[:3], videos[:3].flip(1))
    slots = {slot: synthetic for slot in plan.job("pref").inputs if slot.startswith("pairs.")}
    pairs = load_pairs(pref["pairs"], recipe_dir, pref["frames"], pref["resolution"], input_path=slots.__getitem__)
    assert pairs.prompts == ["h0", "h2", "s0", "s1", "s2", "m"] and pairs.sources == [2, 3, 1]
    assert (pairs.rejected[2:5] - videos[:3].flip(1)).abs().max() < 1e-3
    cursor = MixtureCursor(pairs.sources, seed=0, batch_size=3)
    assert sorted(i for b in range(2) for i in cursor.global_batch(0, b)) == list(range(6))


def test_a_missing_data_file_names_it(project):
    plan, recipe_dir = project
    (recipe_dir / "data" / "pairs.jsonl").unlink()
    pref = plan.job("pref").config.model_dump()
    with pytest.raises(DataError, match=f"^{recipe_dir}/data/pairs.jsonl: file does not exist"):
        load_pairs(pref["pairs"], recipe_dir, 8, [16, 16], input_path=lambda slot: recipe_dir)


def test_on_policy_labels_need_the_judge_to_have_made_them(tmp_path):
    folder = write_pairs(tmp_path / "pairs", ["p"], moving_square(2)[None], moving_square(2)[None])
    spec = {"kind": "on_policy", "input": "pairs.on_policy", "n": 4, "labels": True}
    with pytest.raises(DataError, match="made without labels"):
        load_labels(spec, tmp_path, 2, [32, 32], input_path=lambda slot: folder)


def test_shapes_world_sources():
    prompts = load_prompts({"kind": "shapes_prompts", "n": 5, "split": "test", "seed": 1}, ".")
    assert len(prompts) == 5 and all(isinstance(p, str) and p for p in prompts)
    videos = load_videos({"kind": "shapes_videos", "n": 3, "seed": 0}, ".", 4, [16, 16])
    assert len(videos.prompts) == 3 and videos.videos.shape == (3, 4, 3, 16, 16)
    assert videos.videos.min() >= -1 and videos.videos.max() <= 1
    with pytest.raises(DataError, match="square"):
        load_videos({"kind": "shapes_videos", "n": 3, "seed": 0}, ".", 4, [16, 32])


def test_online_pairs_are_not_read_from_data():
    with pytest.raises(ValueError, match="online pairs are sampled while training"):
        load_pairs({"kind": "online"}, ".", 4, [16, 16], input_path=None)
