"""Pointwise labels: the user's JSONL files {prompt, video, label} (label good | normal | bad, or a
numeric score; video paths relative to the file) and labels artifacts (`labels.jsonl`, `videos/`,
`labels.safetensors`), which may share a folder with a pairs artifact."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vpolang.atomic import atomic_folder
from .clips import load_clip, load_tensors, store_clips
from .errors import DataError
from .jsonl import dumps, read_jsonl, require
from .pairs import stack_same_shape
from .paths import resolve_path
from .video import read_video, resample

LABELS, TENSORS = "labels.jsonl", "labels.safetensors"
CATEGORIES = ("good", "normal", "bad")
RECORD = '{"prompt", "video", "label": "good" | "normal" | "bad" | score}'
Label = str | float


@dataclass
class LabelSet:
    """Videos (N, F, 3, H, W) in [-1, 1] with a label each; unpacks as (prompts, videos, labels)."""

    prompts: list[str]
    videos: torch.Tensor
    labels: list[Label]
    meta: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.meta = self.meta or [{} for _ in self.prompts]
        if not (len(self.videos) == len(self.labels) == len(self.meta) == len(self.prompts)):
            raise ValueError("prompts, videos, labels and meta must have one entry per video")

    def __len__(self) -> int:
        return len(self.prompts)

    # Tuple-like, so callers written for the plain tuple keep working (`prompts, a, b = pairs`, `pairs[0]`).
    def __iter__(self):
        return iter((self.prompts, self.videos, self.labels))

    def __getitem__(self, i: int):
        return (self.prompts, self.videos, self.labels)[i]

    def desirable(self, threshold: float | None = None) -> torch.Tensor:
        """KTO's y: good and normal are desirable, bad is not (as in IPO); a score is desirable when it
        reaches `threshold`, which scores therefore need."""
        out = []
        for label in self.labels:
            if isinstance(label, str):
                out.append(label != "bad")
            elif threshold is None:
                raise ValueError("numeric labels need a threshold to split desirable from undesirable")
            else:
                out.append(label >= threshold)
        return torch.tensor(out, dtype=torch.bool)


def parse_label(value, path: Path, lineno: int) -> Label:
    if isinstance(value, str) and value.strip().lower() in CATEGORIES:
        return value.strip().lower()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise DataError(path, f"label must be good, normal, bad or a finite number, got {value!r}", lineno)


# ---- the user's labels files ---------------------------------------------------------------------
def read_labels_jsonl(path: str | Path, frames: int | None, resolution: tuple[int, int] | list[int] | None) -> LabelSet:
    path = Path(path)
    prompts, videos, labels, meta = [], [], [], []
    for lineno, record in read_jsonl(path, RECORD):
        prompt = require(record, "prompt", str, path, lineno)
        label = parse_label(require(record, "label", (str, int, float), path, lineno), path, lineno)
        video = path.parent / require(record, "video", str, path, lineno)
        try:
            videos.append(read_video(video, frames, resolution))
        except DataError as exc:
            raise DataError(path, f"video: {exc}", lineno) from exc
        prompts.append(prompt)
        labels.append(label)
        meta.append({k: v for k, v in record.items() if k not in ("prompt", "video", "label")})
    if not prompts:
        raise DataError(path, "labels file has no labels")
    return LabelSet(prompts, stack_same_shape(videos, path), labels, meta)


def read_labels_file(spec: dict, recipe_dir: str | Path, frames: int, resolution: list[int]) -> LabelSet:
    """`labels(file)` from a job's config."""
    from .spec import plain

    return read_labels_jsonl(resolve_path(plain(spec)["path"], recipe_dir), frames, resolution)


# ---- labels artifacts ----------------------------------------------------------------------------
def put_labels(root: Path, labels: LabelSet, *, fps: int = 8, exact: bool = True) -> None:
    """Writes the labels into an artifact folder being built (see `write_labels` for the atomic form)."""
    ids = [f"label-{i:06d}" for i in range(len(labels))]
    stored = store_clips(root, dict(zip(ids, labels.videos)), fps=fps, tensors=TENSORS if exact else None)
    records = [{"id": i, "prompt": p, "video": stored[i]["path"], "size": stored[i]["size"], "label": y, **meta}
               for i, p, y, meta in zip(ids, labels.prompts, labels.labels, labels.meta)]
    (root / LABELS).write_text(dumps(records), encoding="utf-8")


def write_labels(folder: str | Path, labels: LabelSet, *, fps: int = 8) -> Path:
    with atomic_folder(folder) as tmp:
        put_labels(tmp, labels, fps=fps)
    return Path(folder)


def read_labels(folder: str | Path, frames: int | None = None, resolution: tuple[int, int] | list[int] | None = None,
                exact: bool = True) -> LabelSet:
    folder = Path(folder)
    tensors = load_tensors(folder / TENSORS) if exact else None
    prompts, videos, labels, meta = [], [], [], []
    for lineno, record in read_jsonl(folder / LABELS, RECORD):
        where = (folder / LABELS, lineno)
        key = require(record, "id", str, *where)
        clip = {"path": require(record, "video", str, *where), "size": require(record, "size", list, *where)}
        videos.append(resample(load_clip(folder, key, clip, tensors, where), frames, resolution))
        prompts.append(require(record, "prompt", str, *where))
        labels.append(parse_label(record.get("label"), *where))
        meta.append({k: v for k, v in record.items() if k not in ("id", "prompt", "video", "size", "label")})
    if not prompts:
        raise DataError(folder / LABELS, "labels artifact is empty")
    return LabelSet(prompts, torch.stack(videos), labels, meta)
