"""Atomic, checksummed checkpoints: a half-written or damaged checkpoint is never read back.

A checkpoint is a folder `step-00000120/` holding `state.pt` (whatever the trainer hands over: model
and optimiser state dicts, RNG states, step, data cursor) and `manifest.json` (the step, and size and
sha256 of every file). It is written under a temporary name, every file fsynced, then renamed into place
in one step. `latest_valid()` checks the newest checkpoints against their manifests and falls back to
the previous one, saying why, when one is truncated or corrupted; a damaged one is set aside (renamed
`damaged-step-...`, not deleted) so it can neither be loaded nor push a good one out of the last K."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from vpolang.atomic import publish_folder, write_text

MANIFEST = "manifest.json"
STATE = "state.pt"
PREFIX = "step-"
TEMP_PREFIX = ".tmp-"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_step(path: Path) -> int:
    return int(path.name[len(PREFIX):])


class CheckpointManager:
    def __init__(self, folder: Path, keep: int = 2, log: Callable[[str], None] = print):
        if keep < 1:
            raise ValueError("keep at least one checkpoint")
        self.folder = folder
        self.keep = keep
        self.log = log

    def save(self, step: int, state: dict[str, Any]) -> Path:
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{PREFIX}{step:08d}"
        tmp = self.folder / f"{TEMP_PREFIX}{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            torch.save(state, tmp / STATE)
            self._write_manifest(tmp, step)
            publish_folder(tmp, final)  # the same step again (a resumed run re-saving) replaces it
        finally:  # a full disk leaves no half-written temporary behind
            shutil.rmtree(tmp, ignore_errors=True)
        self._prune()
        return final

    @staticmethod
    def _write_manifest(folder: Path, step: int) -> None:
        files = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in sorted(folder.iterdir())}
        write_text(folder / MANIFEST, json.dumps({"step": step, "files": files}, indent=2))

    def _prune(self) -> None:
        for old in self.list()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        for leftover in self.folder.glob(f"{TEMP_PREFIX}*"):  # saves killed before their rename
            if not leftover.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(leftover, ignore_errors=True)

    def list(self) -> list[Path]:
        """Completed checkpoints, oldest first (temporaries and set-aside ones are not listed)."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX))

    def verify(self, path: Path) -> str | None:
        """None when the checkpoint is intact, else what is wrong with it."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            files = manifest["files"]
            if manifest["step"] != checkpoint_step(path):
                return f"its manifest is for step {manifest['step']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "no readable manifest"
        if STATE not in files:
            return f"the manifest lists no {STATE}"
        for name, expected in files.items():
            file = path / name
            if not file.is_file():
                return f"{name} is missing"
            if file.stat().st_size != expected["bytes"]:  # cheap: catches truncation before hashing
                return f"{name} is truncated ({file.stat().st_size} of {expected['bytes']} bytes)"
            if sha256_file(file) != expected["sha256"]:
                return f"{name} does not match its checksum"
        return None

    def latest_valid(self) -> tuple[int, Path] | None:
        """(step, folder) of the newest intact checkpoint, or None when there is none."""
        for path in reversed(self.list()):
            problem = self.verify(path)
            if problem is None:
                return checkpoint_step(path), path
            aside = path.with_name(f"damaged-{path.name}")
            shutil.rmtree(aside, ignore_errors=True)
            path.rename(aside)
            self.log(f"checkpoint {path.name} is damaged ({problem}); set aside as {aside.name}, "
                     "falling back to the previous one")
        return None

    def load(self, path: Path) -> dict[str, Any]:
        import torch

        # weights_only=False: checkpoints hold RNG states and trainer records, and are our own files.
        return torch.load(path / STATE, map_location="cpu", weights_only=False)
