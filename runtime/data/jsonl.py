"""JSONL records with their line numbers, so every complaint can name the file and the line."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .errors import DataError


def read_jsonl(path: Path, what: str) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-blank line; `what` describes the expected record for errors,
    e.g. '{"prompt": ...}'."""
    if not path.is_file():
        raise DataError(path, "file does not exist")
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(path, f"not UTF-8 text ({exc.reason})", lineno) from exc
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise DataError(path, f"not valid JSON ({exc.args[0]}); expected {what}", lineno) from exc
            if not isinstance(record, dict):
                raise DataError(path, f"expected a JSON object {what}, got {type(record).__name__}", lineno)
            yield lineno, record


def require(record: dict, name: str, kind: type | tuple[type, ...], path: Path, lineno: int):
    """record[name], checked to be of `kind` (bool is not accepted where a number is expected)."""
    if name not in record:
        raise DataError(path, f"missing field \"{name}\"", lineno)
    value = record[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        names = " or ".join(t.__name__ for t in _as_tuple(kind))
        raise DataError(path, f"field \"{name}\" must be {names}, got {value!r}", lineno)
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def dumps(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
