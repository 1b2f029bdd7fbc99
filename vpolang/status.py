"""A job's status.json: one versioned, validated definition, read and written by the runtime (the job
records itself, the executors record what it could not) and read by `vpo status` and `vpo report`.

A status file that is damaged (not JSON, not an object, a field of the wrong type, a newer major
version) is read as "not done" with a warning naming it, never as a crash or as a job that fails on
every rerun: the next attempt writes a valid one over it. Torch-free (the compiler's reports read it)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .atomic import write_text

STATUS_VERSION = "1.0"
STATES = ("pending", "running", "done", "failed", "cancelled")
State = Literal["pending", "running", "done", "failed", "cancelled"]
MAX_WARNINGS = 20  # a job that warns every step must not grow its status without bound


class DamagedStatus(ValueError):
    """status.json exists but is not a status this vpo can read."""


class JobStatus(BaseModel):
    # Fields a later 1.x adds are kept as they are (and written back); known fields are checked strictly.
    model_config = ConfigDict(extra="allow", strict=True)

    schema_version: str = STATUS_VERSION
    state: State = "pending"
    job: str | None = None
    kind: str | None = None
    hash: str | None = None
    attempts: int = Field(0, ge=0)
    started: float | None = None
    finished: float | None = None
    updated: float | None = None
    error: str | None = None
    stop_reason: str | None = None
    span: str | None = None
    host: str | None = None
    pid: int | None = None
    warnings: list[str] = Field(default_factory=list)  # this attempt's, for the terminal and `vpo status`


def parse_status(text: str) -> JobStatus:
    """A validated status from the file's text; DamagedStatus saying why when it is not one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DamagedStatus(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DamagedStatus(f"a JSON {type(data).__name__} where an object is expected")
    version = str(data.get("schema_version", STATUS_VERSION))  # files before versioning are 1.0
    if version.split(".")[0] != STATUS_VERSION.split(".")[0]:
        raise DamagedStatus(f"schema_version {version} (this vpo reads {STATUS_VERSION})")
    data = {**data, "schema_version": STATUS_VERSION}
    # Numbers written as integers (time stamps of whole seconds) are floats here.
    for key in ("started", "finished", "updated"):
        if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
            data[key] = float(data[key])
    try:
        return JobStatus.model_validate(data)
    except ValidationError as exc:
        raise DamagedStatus(one_line(exc)) from None


def one_line(exc: Exception) -> str:
    """An error as one line: pydantic's many-line report becomes its first problem (and a count)."""
    if not isinstance(exc, ValidationError):
        return " ".join(str(exc).split())
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or "value"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"`{field}`: {first['msg']}{more}"


_warned: set[str] = set()


def read_status(path: Path, warn: bool = True) -> JobStatus | None:
    """The status at `path`; None when there is none, or when it is damaged (with a warning on stderr,
    once per file and process: a job is then treated as not done and the next attempt rewrites it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return _damaged(path, f"unreadable ({exc})", warn)
    try:
        return parse_status(text)
    except DamagedStatus as exc:
        return _damaged(path, str(exc), warn)


def _damaged(path: Path, why: str, warn: bool) -> None:
    if warn and str(path) not in _warned:
        _warned.add(str(path))
        print(f"warning: {path} is damaged: {why}; the job is treated as not done and its next attempt "
              "rewrites it", file=sys.stderr)
    return None


def write_status(path: Path, status: JobStatus) -> None:
    write_text(path, status.model_dump_json(indent=2) + "\n")


def updated_status(status: JobStatus | None, changes: dict[str, Any]) -> JobStatus:
    """`status` with `changes` applied, validated (an unknown state, a wrong type: a bug, ValueError)."""
    data = (status or JobStatus()).model_dump()
    data.update(changes)
    data["warnings"] = list(data.get("warnings") or [])[-MAX_WARNINGS:]
    try:
        return JobStatus.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"invalid job status change {changes}: {exc}") from None
