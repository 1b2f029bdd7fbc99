"""Atomic, checksummed checkpoints: never a half-written one is read back.

A checkpoint is a folder `step-00000120/` holding `state.pt` and `manifest.json` (step and sha256 of
every file). It is written under a temporary name, fsynced, then renamed into place; `latest_valid()`
verifies the checksums and falls back to the previous checkpoint, saying so, when one is damaged."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointManager:
    def __init__(self, folder: Path, keep: int = 2, log: Callable[[str], None] = print):
        self.folder = folder
        self.keep = keep
        self.log = log

    def save(self, step: int, state: dict[str, Any]) -> Path:
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"step-{step:08d}"
        tmp = self.folder / f".tmp-step-{step:08d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        torch.save(state, tmp / "state.pt")
        files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        (tmp / MANIFEST).write_text(json.dumps({"step": step, "files": files}, indent=2))
        for p in tmp.iterdir():
            with p.open("rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.folder)
        self._prune()
        return final

    def _prune(self) -> None:
        for old in self.list()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    def list(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and p.name.startswith("step-"))

    def verify(self, path: Path) -> str | None:
        """None when intact, else what is wrong."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            return "no readable manifest"
        for name, digest in manifest["files"].items():
            file = path / name
            if not file.is_file():
                return f"{name} is missing"
            if _sha256(file) != digest:
                return f"{name} does not match its checksum"
        return None

    def latest_valid(self) -> tuple[int, Path] | None:
        for path in reversed(self.list()):
            problem = self.verify(path)
            if problem is None:
                return int(path.name.split("-")[1]), path
            self.log(f"checkpoint {path.name} is damaged ({problem}); falling back to the previous one")
        return None

    def load(self, path: Path) -> dict[str, Any]:
        import torch

        return torch.load(path / "state.pt", map_location="cpu", weights_only=False)
