"""Preference pairs: the user's JSONL files {prompt, chosen, rejected[, tie]} (video paths relative to
the file) and the pairs artifacts jobs hand each other.

An artifact folder holds `pairs.jsonl` (itself a valid pairs file: its video paths are relative to
it), the clips under `videos/`, and `pairs.safetensors` with the exact pixels, which readers prefer."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import accumulate
from pathlib import Path

import torch

from vpolang.atomic import atomic_folder
from .clips import load_clip, load_tensors, store_clips
from .errors import DataError
from .jsonl import dumps, read_jsonl, require
from .paths import resolve_path
from .video import read_video, resample

PAIRS, TENSORS = "pairs.jsonl", "pairs.safetensors"
RECORD = '{"prompt", "chosen", "rejected"[, "tie"]}'


@dataclass
class PairSet:
    """Winners and losers (N, F, 3, H, W) in [-1, 1]; unpacks as (prompts, chosen, rejected).

    `sources` gives the sizes of the sources a mixture concatenated, in order (one entry otherwise)."""

    prompts: list[str]
    chosen: torch.Tensor
    rejected: torch.Tensor
    ties: list[bool] = field(default_factory=list)
    meta: list[dict] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.prompts)
        self.ties = self.ties or [False] * n
        self.meta = self.meta or [{} for _ in range(n)]
        self.sources = self.sources or [n]
        if not (len(self.chosen) == len(self.rejected) == len(self.ties) == len(self.meta) == n == sum(self.sources)):
            raise ValueError("prompts, chosen, rejected, ties and meta must have one entry per pair")

    def __len__(self) -> int:
        return len(self.prompts)

    # Tuple-like, so callers written for the plain tuple keep working (`prompts, a, b = pairs`, `pairs[0]`).
    def __iter__(self):
        return iter((self.prompts, self.chosen, self.rejected))

    def __getitem__(self, i: int):
        return (self.prompts, self.chosen, self.rejected)[i]

    def without_ties(self) -> PairSet:
        """Ties carry no preference for DPO; a mixture keeps its per-source sizes right."""
        keep = [i for i, tie in enumerate(self.ties) if not tie]
        bounds = [0, *accumulate(self.sources)]
        sizes = [sum(1 for i in keep if lo <= i < hi) for lo, hi in zip(bounds, bounds[1:])]
        return replace(self, prompts=[self.prompts[i] for i in keep], chosen=self.chosen[keep],
                       rejected=self.rejected[keep], ties=[False] * len(keep), meta=[self.meta[i] for i in keep],
                       sources=sizes if keep else [0])


def concat_pairs(parts: list[PairSet]) -> PairSet:
    """Sources joined for a mixture: indices of part k follow those of parts 0..k-1."""
    return PairSet(prompts=[p for part in parts for p in part.prompts],
                   chosen=torch.cat([part.chosen for part in parts]),
                   rejected=torch.cat([part.rejected for part in parts]),
                   ties=[t for part in parts for t in part.ties], meta=[m for part in parts for m in part.meta],
                   sources=[len(part) for part in parts])


# ---- the user's pairs files ----------------------------------------------------------------------
def read_pairs_jsonl(path: str | Path, frames: int | None, resolution: tuple[int, int] | list[int] | None,
                     keep_ties: bool = False) -> PairSet:
    path = Path(path)
    prompts, chosen, rejected, ties, meta = [], [], [], [], []
    for lineno, record in read_jsonl(path, RECORD):
        tie = require(record, "tie", bool, path, lineno) if "tie" in record else False
        prompt = require(record, "prompt", str, path, lineno)
        files = [path.parent / require(record, side, str, path, lineno) for side in ("chosen", "rejected")]
        if tie and not keep_ties:
            continue
        videos = [_video(f, side, path, lineno, frames, resolution) for f, side in zip(files, ("chosen", "rejected"))]
        prompts.append(prompt)
        chosen.append(videos[0])
        rejected.append(videos[1])
        ties.append(tie)
        meta.append({k: v for k, v in record.items() if k not in _LAYOUT})  # e.g. per-dimension verdicts
    if not prompts:
        raise DataError(path, "pairs file has no pairs" + ("" if keep_ties else " (ties are skipped)"))
    return PairSet(prompts, stack_same_shape(chosen, path), stack_same_shape(rejected, path), ties=ties, meta=meta)


def stack_same_shape(videos: list[torch.Tensor], path: Path) -> torch.Tensor:
    sizes = sorted({tuple(v.shape) for v in videos})
    if len(sizes) > 1:
        raise DataError(path, f"videos differ in shape ({', '.join('x'.join(map(str, s)) for s in sizes[:3])}); "
                        "set the stage's `frames` and `resolution` to read them at one size")
    return torch.stack(videos)


def _video(video: Path, side: str, path: Path, lineno: int, frames, resolution) -> torch.Tensor:
    try:
        return read_video(video, frames, resolution)
    except DataError as exc:
        raise DataError(path, f"{side} video: {exc}", lineno) from exc


def read_pairs_file(spec: dict, recipe_dir: str | Path, frames: int, resolution: list[int]) -> PairSet:
    """`pairs(file)` from a job's config, ties dropped."""
    from .spec import plain

    return read_pairs_jsonl(resolve_path(plain(spec)["path"], recipe_dir), frames, resolution)


# ---- pairs artifacts -----------------------------------------------------------------------------
def put_pairs(root: Path, pairs: PairSet, *, fps: int = 8, exact: bool = True) -> None:
    """Writes the pairs into an artifact folder being built (see `write_pairs` for the atomic form)."""
    ids = [f"{i:06d}" for i in range(len(pairs))]
    clips = {f"{i}-{side}": video for i, c, r in zip(ids, pairs.chosen, pairs.rejected)
             for side, video in (("chosen", c), ("rejected", r))}
    stored = store_clips(root, clips, fps=fps, tensors=TENSORS if exact else None)
    records = [{"id": i, "prompt": p, **_sides(stored, i), **({"tie": True} if tie else {}), **meta}
               for i, p, tie, meta in zip(ids, pairs.prompts, pairs.ties, pairs.meta)]
    (root / PAIRS).write_text(dumps(records), encoding="utf-8")


def _sides(stored: dict[str, dict], pair_id: str) -> dict:
    chosen, rejected = stored[f"{pair_id}-chosen"], stored[f"{pair_id}-rejected"]
    return {"chosen": chosen["path"], "rejected": rejected["path"],
            "chosen_size": chosen["size"], "rejected_size": rejected["size"]}


def write_pairs(folder: str | Path, prompts: list[str], winners: torch.Tensor, losers: torch.Tensor,
                meta: list[dict] | None = None, *, fps: int = 8) -> Path:
    """A pairs artifact, atomically: the folder appears complete or not at all."""
    with atomic_folder(folder) as tmp:
        put_pairs(tmp, PairSet(list(prompts), winners, losers, meta=list(meta or [])), fps=fps)
    return Path(folder)


def read_pairs(folder: str | Path, frames: int | None = None, resolution: tuple[int, int] | list[int] | None = None,
               exact: bool = True) -> PairSet:
    """A pairs artifact, from its exact tensors when present (and `exact`), else from its clips."""
    folder = Path(folder)
    tensors = load_tensors(folder / TENSORS) if exact else None
    prompts, chosen, rejected, ties, meta = [], [], [], [], []
    for lineno, record in read_jsonl(folder / PAIRS, RECORD):
        where = (folder / PAIRS, lineno)
        key = require(record, "id", str, *where)
        for side, out in (("chosen", chosen), ("rejected", rejected)):
            clip = {"path": require(record, side, str, *where), "size": require(record, f"{side}_size", list, *where)}
            out.append(resample(load_clip(folder, f"{key}-{side}", clip, tensors, where), frames, resolution))
        prompts.append(require(record, "prompt", str, *where))
        ties.append(bool(record.get("tie", False)))
        meta.append({k: v for k, v in record.items() if k not in _LAYOUT})
    if not prompts:
        raise DataError(folder / PAIRS, "pairs artifact is empty")
    return PairSet(prompts, torch.stack(chosen), torch.stack(rejected), ties=ties, meta=meta)


_LAYOUT = {"id", "prompt", "chosen", "rejected", "chosen_size", "rejected_size", "tie"}
