"""E0317: shapes-world videos at a non-square resolution. The shapes world renders square frames only;
its data source refuses any other size when the job reads it."""
from __future__ import annotations

from ..diagnostics import Diagnostic
from .context import field_span


def _has_shapes_videos(value) -> bool:
    if isinstance(value, dict):
        return value.get("kind") == "shapes_videos" or any(_has_shapes_videos(v) for v in value.values()
                                                            if not (isinstance(v, dict) and "ref" in v))
    if isinstance(value, list):
        return any(_has_shapes_videos(v) for v in value)
    return False


def check(stage, pf) -> list[Diagnostic]:
    cfg = stage.config
    resolution = cfg.get("resolution") or (stage.base_model or {}).get("resolution")
    if not resolution or resolution[0] == resolution[1] or not _has_shapes_videos(cfg):
        return []
    return [Diagnostic("E0317", f"shapes-world videos are square; stage `{stage.id}` reads them at "
                       f"{resolution[0]}x{resolution[1]}", field_span(stage, ("resolution",)),
                       hint=f"use a square resolution, e.g. [{resolution[0]}, {resolution[0]}] or 16p")]
