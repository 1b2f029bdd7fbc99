"""Data preflight: the user's datasets and model folders, checked at `vpo check` time where they are on
this machine, so bad data is reported at its recipe line before a job starts (and loads torch).

`scan_source` reads each dataset once (cached by file identity): the planner takes its item count from
the same reading that `preflight` turns into diagnostics."""
from __future__ import annotations

from .cache import FILE_KINDS, scan_source
from .report import preflight
from .scan import Scan

__all__ = ["FILE_KINDS", "Scan", "preflight", "scan_source"]
