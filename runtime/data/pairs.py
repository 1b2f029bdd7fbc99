"""Pair artifacts: winners, losers and prompts as tensors (`pairs.pt`) plus a readable index (`pairs.jsonl`).

Tensors keep pixels exact between jobs (no codec loss); the folder is written under a temporary name
and renamed into place."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from runtime.errors import JobError


def write_pairs(folder: Path, prompts: list[str], winners: torch.Tensor, losers: torch.Tensor,
                meta: list[dict] | None = None) -> None:
    tmp = folder.with_name("." + folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({"prompts": list(prompts), "winners": winners.half(), "losers": losers.half()}, tmp / "pairs.pt")
    with (tmp / "pairs.jsonl").open("w") as handle:
        for i, p in enumerate(prompts):
            handle.write(json.dumps({"index": i, "prompt": p, **((meta or [{}] * len(prompts))[i])}) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def read_pairs(folder: Path) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    data = torch.load(folder / "pairs.pt", map_location="cpu")
    return data["prompts"], data["winners"].float(), data["losers"].float()


def read_pairs_file(spec: dict, base: Path, frames: int, resolution: list[int]):
    """pairs(file): JSONL {prompt, chosen, rejected[, tie]} with video paths relative to the file."""
    from .sources import read_video

    path = Path(spec["path"]) if Path(spec["path"]).is_absolute() else base / spec["path"]
    if not path.is_file():
        raise JobError(f"pairs file {path} does not exist")
    prompts, wins, loses = [], [], []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if rec.get("tie"):
                continue  # a tie carries no preference for DPO
            chosen, rejected = path.parent / rec["chosen"], path.parent / rec["rejected"]
            prompts.append(rec["prompt"])
        except (ValueError, KeyError, TypeError) as exc:
            raise JobError(f"{path}:{lineno}: expected {{prompt, chosen, rejected}} ({exc})") from exc
        wins.append(read_video(chosen, frames, resolution))
        loses.append(read_video(rejected, frames, resolution))
    if not prompts:
        raise JobError(f"pairs file {path} has no pairs")
    return prompts, torch.stack(wins), torch.stack(loses)
