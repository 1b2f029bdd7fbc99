"""The registry on the plans the compiler really emits: every example recipe and every stdlib reward,
with tiny local models substituted for `path`."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from runtime.errors import JobError
from runtime.rewards import registry, tiny
from runtime.shapes import data as shapes_data
from runtime.shapes import rewards as shapes_rewards

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.vpo"))
MODEL_KINDS = {"feature_consistency", "clip_score", "aesthetic", "vlm_judge", "video_reward_model"}

CATALOGUE = """vpo 0.1

use std.models
use std.shapes
use std.rewards as r

model base = shapes.tiny_dit

reward local_clip = clip_score { path = "tiny/clip", frames = 2 }
reward pair_judge = vlm_judge { model = models.qwen2_vl_2b, pairwise = true }
reward shapes_subject = feature_consistency { backbone = "shapes" }

stage report = evaluate(base) {
  prompts = shapes.prompts(n = 4, split = test)
  metrics = [r.videoalign, r.videoalign.mq, r.videoscore, r.qwen_vl_judge, r.safety, r.flow_magnitude,
             r.structure_stability, r.clip, r.aesthetic, temporal_flicker, motion_smoothness, dynamic_degree,
             sharpness, subject_consistency, background_consistency, aesthetic_quality, shapes.alignment,
             shapes.smoothness, shapes.flicker, shapes.sharpness, local_clip, shapes_subject]
  gsb     = pair_judge  # a pairwise judge compares the policy with a baseline (E0316 elsewhere)
}
"""


def plan_json(path: Path) -> dict:
    """The lowered plan as the runtime reads it (estimates, which do not touch rewards, left out)."""
    from vpolang.api import check_file
    from vpolang.lower import lower

    result = check_file(path)
    assert result.ok and result.recipe is not None, result.diagnostics
    return json.loads(lower(result.recipe).to_json())


def reward_refs(node) -> list[dict]:
    if isinstance(node, dict):
        if node.get("ref") == "reward":
            return [node]
        return [r for v in node.values() for r in reward_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in reward_refs(v)]
    return []


def expressions(node, kind: str) -> list[dict]:
    if isinstance(node, dict):
        found = [node] if node.get("kind") == kind and ("terms" in node or "rewards" in node or "op" in node) else []
        return found + [e for v in node.values() for e in expressions(v, kind)]
    if isinstance(node, list):
        return [e for v in node for e in expressions(v, kind)]
    return []


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory, models):
    folder = tmp_path_factory.mktemp("catalogue")
    (folder / "tiny").mkdir()
    shutil.copytree(models["clip"], folder / "tiny" / "clip")
    (folder / "catalogue.vpo").write_text(CATALOGUE)
    return folder / "catalogue.vpo"


@pytest.fixture(scope="module")
def reward_models(tmp_path_factory):
    """A saved tiny reward model per head list, made on demand."""
    root, made = tmp_path_factory.mktemp("reward_models"), {}

    def folder(heads):
        key = tuple(heads)
        if key not in made:
            made[key] = tiny.tiny_reward_model(root / "_".join(key), list(heads), frames=2)
        return made[key]
    return folder


def with_tiny_paths(ref: dict, models, reward_models) -> dict:
    """The reference with its weights path (unset, or the stdlib's placeholder) pointed at a tiny model of
    the right kind; `local_clip` keeps its real relative path."""
    ref = copy.deepcopy(ref)
    spec = ref.get("spec")
    if spec is None or ref["name"] == "local_clip":
        return ref
    kind = spec["kind"]
    if kind == "feature_consistency" and spec["backbone"] != "shapes":
        spec["path"] = str(models["dinov2"])
    elif kind in ("clip_score", "aesthetic"):
        spec["path"] = str(models["clip"])
    elif kind == "vlm_judge":
        family = spec["model"]["spec"]["family"]
        spec["model"]["spec"]["path"] = str(models["qwen2_5_vl" if family == "qwen25_vl" else "qwen2_vl"])
        spec["frames"] = 2
    elif kind == "video_reward_model":
        spec["path"] = str(reward_models(spec["heads"]))
    return ref


def context(recipe: Path, reward_models, refs) -> SimpleNamespace:
    heads = {r["input"]: r["heads"] for r in refs if r.get("input")}
    return SimpleNamespace(input_path=lambda slot: reward_models(heads[slot]), recipe_dir=recipe.parent, device="cpu")


def shapes_batch(n=2):
    prompts, videos = shapes_data.videos(n, seed=0, frames=4, size=16)
    return videos, prompts


def test_every_reward_in_the_examples_and_the_stdlib_builds_and_scores(models, reward_models, catalogue):
    videos, prompts = shapes_batch()
    seen_kinds = set()
    for recipe in [*EXAMPLES, catalogue]:
        refs = reward_refs(plan_json(recipe)["jobs"])
        ctx = context(recipe, reward_models, refs)
        distinct = {json.dumps(r, sort_keys=True): r for r in refs}.values()  # GRPO repeats its rewards
        for ref in distinct:
            ref = with_tiny_paths(ref, models, reward_models)
            if (ref.get("spec") or {}).get("pairwise"):  # compares two videos instead
                p_first = registry.reward_for(ref, ctx).compare(videos, videos.flip(0), prompts)
                assert p_first.shape == (2,) and bool(((p_first > 0) & (p_first < 1)).all())
                continue
            scores = registry.score_reward(ref, videos, prompts, ctx)
            assert scores.shape == (2,) and scores.dtype == torch.float32 and torch.isfinite(scores).all(), ref["name"]
            seen_kinds.add((ref.get("spec") or {"kind": "reward_model stage"})["kind"])
    assert seen_kinds == {"weight_free", "shapes", "feature_consistency", "clip_score", "aesthetic", "vlm_judge",
                          "video_reward_model", "reward_model stage"}


def test_heads_of_a_multi_head_reward_come_from_one_model(models, reward_models, catalogue):
    refs = reward_refs(plan_json(catalogue)["jobs"])
    whole, mq = [with_tiny_paths(r, models, reward_models) for r in refs if r["name"] == "r.videoalign"]
    videos, prompts = shapes_batch()
    assert registry.build_reward(whole) is registry.build_reward(mq)
    scores = registry.build_reward(whole)(videos, prompts)
    assert torch.equal(registry.score_reward(whole, videos, prompts), scores["overall"])
    assert torch.equal(registry.score_reward(mq, videos, prompts), scores["mq"])


def test_model_rewards_without_weights_say_which_reward_and_what_to_set(catalogue):
    refs = [r for r in reward_refs(plan_json(catalogue)["jobs"])
            if (r.get("spec") or {}).get("kind") in MODEL_KINDS and r["name"] not in ("local_clip", "shapes_subject")]
    assert {r["spec"]["kind"] for r in refs} == MODEL_KINDS
    for ref in refs:
        placeholder = ref["spec"].get("path")  # the stdlib's reward models name a checkpoint folder
        message = rf"`path` {placeholder} is not a folder" if placeholder else r"needs the weights of .*set `path`"
        with pytest.raises(JobError, match=rf"reward `{ref['name']}`:? {message}"):
            registry.build_reward(ref, base_dir=catalogue.parent)


def test_relative_paths_are_read_from_the_recipe_folder(catalogue):
    ref = next(r for r in reward_refs(plan_json(catalogue)["jobs"]) if r["name"] == "local_clip")
    assert ref["spec"]["path"] == "tiny/clip"
    reward = registry.build_reward(ref, base_dir=catalogue.parent)
    assert reward.heads == ("clip_score",) and reward.frames == 2
    with pytest.raises(JobError, match="`path` tiny/clip is not a folder"):
        registry.build_reward(ref, base_dir=catalogue.parent / "elsewhere")


def test_stage_rewards_need_the_stage_output():
    ref = next(r for r in reward_refs(plan_json(ROOT / "examples" / "videoalign.vpo")["jobs"]) if r.get("stage"))
    with pytest.raises(JobError, match="produced by the reward_model stage `rm`.*job input `reward_model:rm`"):
        registry.build_reward(ref)


def test_rewards_are_built_once_per_spec():
    ref = {"ref": "reward", "name": "a", "head": None, "heads": [], "stage": None,
           "spec": {"kind": "weight_free", "metric": "sharpness", "resize": 32}}
    renamed = {**ref, "name": "b"}
    other = {**ref, "spec": {**ref["spec"], "resize": 48}}
    assert registry.build_reward(ref) is registry.build_reward(renamed)
    assert registry.build_reward(ref) is not registry.build_reward(other)


def test_unknown_kinds_are_named():
    ref = {"ref": "reward", "name": "r.magic", "spec": {"kind": "telepathy"}}
    with pytest.raises(JobError, match="kind `telepathy` has no runtime implementation"):
        registry.build_reward(ref)


def test_sum_expression_of_the_quickstart_is_the_weighted_sum():
    expr = expressions(plan_json(ROOT / "examples" / "quickstart.vpo")["jobs"], "sum")[0]
    videos, prompts = shapes_batch(4)
    out = registry.score_expression(expr, videos, prompts)
    alignment = shapes_rewards.alignment(videos, prompts)
    smoothness = shapes_rewards.smoothness(videos, prompts)
    assert set(out["terms"]) == {"shapes.alignment", "shapes.smoothness"}
    assert torch.allclose(out["terms"]["shapes.alignment"], alignment)
    assert torch.allclose(out["total"], alignment + 0.5 * smoothness)


def test_joint_expression_scores_each_reward_and_runs_the_model_once(models, reward_models, monkeypatch):
    plan = plan_json(ROOT / "examples" / "teleboost.vpo")
    expr = expressions(plan["jobs"], "joint")[0]
    expr = {**expr, "rewards": [with_tiny_paths(r, models, reward_models) for r in expr["rewards"]]}
    reward = registry.build_reward(expr["rewards"][0])
    calls = []
    original = reward.score
    monkeypatch.setattr(reward, "score", lambda v, p: calls.append(len(p)) or original(v, p))
    videos, prompts = shapes_batch()
    out = registry.score_expression(expr, videos, prompts)
    assert list(out["terms"]) == ["r.videoalign.vq", "r.videoalign.mq", "r.videoalign.ta"]
    assert len(out["joint"]) == 3 and calls == [2]
    whole = reward(videos, prompts)
    assert all(torch.equal(s, whole[h]) for s, h in zip(out["joint"], ["vq", "mq", "ta"]))


def test_gate_masks_precomputed_scores_or_scores_the_videos(models, reward_models):
    gate = expressions(plan_json(ROOT / "examples" / "teleboost.vpo")["jobs"], "gate")[0]
    gate = {**gate, "reward": with_tiny_paths(gate["reward"], models, reward_models)}
    assert registry.gate_mask({**gate, "op": ">=", "threshold": 0.5}, torch.tensor([0.2, 0.5, 0.9])).tolist() == \
        [False, True, True]
    assert registry.gate_mask({**gate, "op": "<", "threshold": 0.5}, torch.tensor([0.2, 0.5])).tolist() == [True, False]
    videos, prompts = shapes_batch()
    scores = registry.score_reward(gate["reward"], videos, prompts)
    threshold = float(scores.mean())
    gate = {**gate, "threshold": threshold}
    assert torch.equal(registry.gate_mask(gate, videos, prompts), scores >= threshold)
    assert torch.equal(registry.gate_mask(gate, scores), scores >= threshold)
