"""The one error the data layer raises for problems in the user's data."""
from __future__ import annotations

from pathlib import Path

from runtime.errors import JobError


class DataError(JobError):
    """A missing, unreadable or malformed data file; the message starts with `file[:line]`.

    A JobError, so the runtime reports it without a traceback, at the recipe line of the stage."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
