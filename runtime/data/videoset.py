"""Sets of captioned videos: read from the user's files (a glob plus captions) or from a video-set
artifact a job wrote (`index.jsonl`, `videos/`, `tensors.safetensors`)."""
from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vpolang.atomic import atomic_folder
from vpolang.datacheck.sniff import NOT_VIDEOS  # one list for the preflight and the reader

from .clips import load_clip, load_tensors, store_clips
from .errors import DataError
from .jsonl import dumps, read_jsonl, require
from .paths import resolve_path
from .video import read_video, resample

INDEX, TENSORS = "index.jsonl", "tensors.safetensors"


@dataclass
class VideoSet:
    """Prompts and videos (N, F, 3, H, W) in [-1, 1]; unpacks as (prompts, videos)."""

    prompts: list[str]
    videos: torch.Tensor
    ids: list[str] = field(default_factory=list)  # default 000000, 000001, ...
    seeds: list[int | None] = field(default_factory=list)
    groups: list[int | str | None] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.prompts)
        self.ids = self.ids or [f"{i:06d}" for i in range(n)]
        self.seeds = self.seeds or [None] * n
        self.groups = self.groups or [None] * n
        if not (len(self.videos) == len(self.ids) == len(self.seeds) == len(self.groups) == n):
            raise ValueError("prompts, videos, ids, seeds and groups must have one entry per video")
        if len(set(self.ids)) != n or any("/" in i or i.startswith(".") for i in self.ids):
            raise ValueError("ids name the files of a video set: unique, no '/', not hidden")

    def __len__(self) -> int:
        return len(self.prompts)

    # Tuple-like, so callers written for the plain tuple keep working (`prompts, a, b = pairs`, `pairs[0]`).
    def __iter__(self):
        return iter((self.prompts, self.videos))

    def __getitem__(self, i: int):
        return (self.prompts, self.videos)[i]


# ---- the user's captioned videos -----------------------------------------------------------------
def index_captioned_videos(pattern: str, captions: str | None, recipe_dir: str | Path) -> list[tuple[Path, str]]:
    """(video, caption) for each video file or frame folder the glob matches, in sorted order. A
    caption comes from the captions JSONL {video, caption} (video paths relative to that file, or
    bare file names) or else from a .txt beside the video."""
    matched = sorted(Path(p) for p in glob.glob(str(resolve_path(pattern, recipe_dir)), recursive=True))
    videos = [p for p in matched if p.is_dir() or p.suffix.lower() not in NOT_VIDEOS]
    if not videos:
        raise DataError(resolve_path(pattern, recipe_dir), "no videos match this pattern")
    table = _caption_table(resolve_path(captions, recipe_dir)) if captions else None
    return [(v, _caption_of(v, table, captions)) for v in videos]


def read_captioned_videos(pattern: str, captions: str | None, recipe_dir: str | Path, frames: int,
                          resolution: tuple[int, int] | list[int]) -> VideoSet:
    pairs = index_captioned_videos(pattern, captions, recipe_dir)
    clips = torch.stack([read_video(path, frames, resolution) for path, _ in pairs])
    return VideoSet([caption for _, caption in pairs], clips)


def _caption_table(path: Path) -> dict[str, str | None]:
    """Keys: resolved paths, and bare names (None where two videos share a name: ambiguous)."""
    table: dict[str, str | None] = {}
    for lineno, record in read_jsonl(path, '{"video": ..., "caption": ...}'):
        video, caption = record.get("video"), record.get("caption")
        if not isinstance(video, str) or not isinstance(caption, str) or not caption.strip():
            raise DataError(path, 'expected {"video": path, "caption": non-empty text}', lineno)
        table[str((path.parent / video).resolve())] = caption.strip()
        name = Path(video).name
        table[name] = None if name in table and table[name] != caption.strip() else caption.strip()
    return table


def _caption_of(video: Path, table: dict[str, str | None] | None, captions: str | None) -> str:
    if table is not None:
        caption = table.get(str(video.resolve())) or table.get(video.name)
        if caption:
            return caption
    sidecar = video.with_suffix(".txt") if video.is_file() else video.parent / f"{video.name}.txt"
    if sidecar.is_file() and sidecar.read_text(encoding="utf-8").strip():
        return sidecar.read_text(encoding="utf-8").strip()
    elsewhere = f"not in {captions} and " if captions else ""
    raise DataError(video, f"video has no caption: {elsewhere}no non-empty {sidecar.name} beside it")


# ---- video-set artifacts -------------------------------------------------------------------------
def write_video_set(folder: str | Path, videos: VideoSet, *, fps: int = 8, exact: bool = True,
                    extra: list[dict] | None = None) -> Path:
    """index.jsonl {id, prompt, path, seed, group, size[, extra]}, videos/<id>.mp4 and (exact) the
    pixels in tensors.safetensors as float16, written atomically."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        stored = store_clips(tmp, dict(zip(videos.ids, videos.videos)), fps=fps, tensors=TENSORS if exact else None)
        records = [{"id": i, "prompt": p, **stored[i], "seed": s, "group": g, **((extra or [{}] * len(videos))[k])}
                   for k, (i, p, s, g) in enumerate(zip(videos.ids, videos.prompts, videos.seeds, videos.groups))]
        (tmp / INDEX).write_text(dumps(records), encoding="utf-8")
    return folder


def read_video_set(folder: str | Path, frames: int | None = None,
                   resolution: tuple[int, int] | list[int] | None = None, exact: bool = True) -> VideoSet:
    """The set as written (from the exact tensors when present and `exact`), optionally resampled."""
    folder = Path(folder)
    tensors = load_tensors(folder / TENSORS) if exact else None
    ids, prompts, seeds, groups, clips = [], [], [], [], []
    for lineno, record in read_jsonl(folder / INDEX, '{"id", "prompt", "path", "size"}'):
        where = (folder / INDEX, lineno)
        key, prompt = require(record, "id", str, *where), require(record, "prompt", str, *where)
        clip = {"path": require(record, "path", str, *where), "size": require(record, "size", list, *where)}
        clips.append(resample(load_clip(folder, key, clip, tensors, where), frames, resolution))
        ids.append(key)
        prompts.append(prompt)
        seeds.append(record.get("seed"))
        groups.append(record.get("group"))
    if not ids:
        raise DataError(folder / INDEX, "video set is empty")
    return VideoSet(prompts, torch.stack(clips), ids=ids, seeds=seeds, groups=groups)

