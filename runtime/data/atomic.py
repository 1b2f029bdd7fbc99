"""Artifacts appear whole or not at all: written under a temporary name beside their final place,
flushed to disk, then renamed in one step. A reader never sees a half-written file or folder."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """A temporary file path (same folder and suffix, so writers that pick a format from the suffix
    still work); on success it replaces `final`, on an exception it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(final: str | Path) -> Iterator[Path]:
    """An empty temporary folder; on success it takes the place of `final` (replacing an older one),
    on an exception it is removed and `final` is left as it was."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        for path in sorted(tmp.rglob("*"), reverse=True):  # files before the folders holding them
            _fsync(path)
        _fsync(tmp)
        _replace_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace_folder(new: Path, final: Path) -> None:
    # A folder cannot be renamed over a non-empty one: the old one steps aside first. Between the two
    # renames `final` is absent (read as "not produced yet"), never mixed.
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(new, final)
    _fsync(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
