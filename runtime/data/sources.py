"""The datasets a job's config names -> prompts, video sets, pairs and labels.

Specs are the lowered sources of the plan: {"kind": "prompts", "path": ...} (paths relative to the
recipe's directory), {"kind": "shapes_videos", ...}, and for data made by earlier jobs
{"kind": "on_policy" | "synthetic", "input": slot}, read through `input_path(slot)` (the job
context's). Problems in the user's files raise DataError naming the file and line."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .errors import DataError
from .spec import plain
from .labels import LABELS, LabelSet, read_labels, read_labels_file
from .pairs import PairSet, concat_pairs, read_pairs, read_pairs_file
from .paths import resolve_path
from .prompts import read_prompts
from .video import write_video  # noqa: F401 - trainers import it from here
from .videoset import VideoSet, read_captioned_videos

InputPath = Callable[[str], Path]


def load_prompts(spec: dict, recipe_dir: str | Path) -> list[str]:
    spec = plain(spec)
    if spec["kind"] == "shapes_prompts":
        from runtime.shapes.data import prompts
        return prompts(spec["n"], spec["split"], spec["seed"])
    _expect(spec, "prompts")
    return read_prompts(resolve_path(spec["path"], recipe_dir))


def load_videos(spec: dict, recipe_dir: str | Path, frames: int, resolution: list[int],
                should_stop: Callable[[], bool] | None = None) -> VideoSet:
    """`should_stop` (e.g. the job's stop event's `is_set`) ends generating a shapes set early."""
    spec = plain(spec)
    if spec["kind"] == "shapes_videos":
        from runtime.shapes.data import videos
        if resolution[0] != resolution[1]:
            raise DataError("shapes.videos", f"shapes-world videos are square; got resolution {resolution}")
        return VideoSet(*videos(spec["n"], spec["seed"], frames, resolution[0], should_stop=should_stop))
    _expect(spec, "videos")
    return read_captioned_videos(spec["path"], spec["captions"], recipe_dir, frames, resolution)


def load_pairs(spec: dict, recipe_dir: str | Path, frames: int, resolution: list[int],
               input_path: InputPath) -> PairSet:
    """Offline pairs, ties dropped; a mixture concatenates its sources (sizes in `.sources`)."""
    spec = plain(spec)
    kind = spec["kind"]
    if kind == "mix":
        return concat_pairs([load_pairs(s, recipe_dir, frames, resolution, input_path) for s in spec["sources"]])
    if kind in ("on_policy", "synthetic"):
        return read_pairs(input_path(spec["input"]), frames, resolution).without_ties()
    if kind == "pairs":
        return read_pairs_file(spec, recipe_dir, frames, resolution)
    raise ValueError(f"{kind} pairs are sampled while training, not read from data")


def load_labels(spec: dict, recipe_dir: str | Path, frames: int, resolution: list[int],
                input_path: InputPath) -> LabelSet:
    spec = plain(spec)
    if spec["kind"] == "on_policy":
        folder = input_path(spec["input"])
        if not (folder / LABELS).is_file():
            raise DataError(folder, "these on-policy pairs were made without labels (set `labels = true`)")
        return read_labels(folder, frames, resolution)
    _expect(spec, "labels")
    return read_labels_file(spec, recipe_dir, frames, resolution)


def _expect(spec: dict, kind: str) -> None:
    if spec["kind"] != kind:
        raise ValueError(f"expected a {kind} source, got {spec['kind']}")
