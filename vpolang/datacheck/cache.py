"""`scan_source`: each dataset read once per process, cached by file identity, so `vpo plan` takes its
item counts from the reading `vpo check` made."""
from __future__ import annotations

from pathlib import Path

from .scan import Files, Scan, scan_text_file, scan_videos

FILE_KINDS = ("prompts", "videos", "pairs", "labels")
_CACHE: dict[tuple, Scan] = {}
_CACHE_SIZE = 128


def scan_source(spec: dict, base: Path) -> Scan:
    """The scan of a dataset value {"kind": prompts | videos | pairs | labels, "path": ...}."""
    files = Files(base)
    kind, path, captions = spec["kind"], spec["path"], spec.get("captions")
    key = (kind, path, captions, str(files.base), _stamp(files, path), _stamp(files, captions))
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = scan_videos(path, captions, files) if kind == "videos" else scan_text_file(kind, path, files)
    return _CACHE[key]


def _stamp(files: Files, path: str | None) -> tuple | None:
    """Changes when the file (or, for a glob, its folder's listing) changes: a stale scan is never reused."""
    if not path:
        return None
    target = files.resolve(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        st = target.stat()
    except OSError:
        return None
    return (str(target), st.st_mtime_ns, st.st_size)

