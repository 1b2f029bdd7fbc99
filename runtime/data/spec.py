"""A source spec as the data readers take it: a job config's typed source (vpolang/jobconfig.py) or the
same as a plain dict (its JSON form, as tests write it)."""
from __future__ import annotations

from typing import Any


def plain(spec: Any) -> dict:
    """The dict form of a source spec; a typed one is dumped whole (every default the schema's)."""
    return spec.model_dump() if hasattr(spec, "model_dump") else spec
