"""Bounded reading of the user's text data: the first MAX_BYTES of a file, line by line, with line numbers.

Past the cap nothing is read; the item count is then extrapolated from the part read (the planner only
needs it for its estimate), so a 50 GB prompts file costs what an 8 MiB one does."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 8 << 20  # of each data file


class LineProblem(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


@dataclass
class Prefix:
    """The complete lines of a file's first MAX_BYTES, and how much of the file that is."""

    lines: list[bytes]
    read: int  # bytes those lines hold
    size: int  # bytes of the file

    def extrapolate(self, items: int) -> int:
        """Items in the whole file, from `items` found in the part read."""
        if self.read >= self.size or not self.read:
            return items
        return round(items * self.size / self.read)


def read_prefix(path: Path) -> Prefix:
    size = path.stat().st_size
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES)
    if len(data) < size:  # cut mid-line: keep the complete lines only
        data = data[:data.rfind(b"\n") + 1]
    return Prefix(data.splitlines(), len(data), size)


def text_lines(prefix: Prefix) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line; raises LineProblem at the first that is not UTF-8."""
    for lineno, raw in enumerate(prefix.lines, 1):
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LineProblem(lineno, f"not UTF-8 text ({exc.reason} at column {exc.start + 1})") from None


def json_records(prefix: Prefix, what: str) -> Iterator[tuple[int, dict]]:
    """(line number, record) of every non-blank line, as the runtime's read_jsonl reads them."""
    for lineno, line in text_lines(prefix):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # RecursionError: a line of 10^5 nested brackets
            raise LineProblem(lineno, f"not valid JSON ({exc.args[0]}); expected {what}") from None
        if not isinstance(record, dict):
            raise LineProblem(lineno, f"expected a JSON object {what}, got {type(record).__name__}")
        yield lineno, record


def field_of(record: dict, name: str, kind: type | tuple[type, ...], lineno: int):
    """record[name] of `kind` (bool is no number), else LineProblem, worded as the runtime's `require`."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if name not in record:
        raise LineProblem(lineno, f"missing field \"{name}\"")
    value = record[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise LineProblem(lineno, f"field \"{name}\" must be {' or '.join(k.__name__ for k in kinds)}, "
                                  f"got {value!r}")
    return value
