"""Source files and spans: where every AST node, diagnostic and plan job points back to."""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_SOURCE_BYTES = 4_000_000  # a recipe or imported file; checked before reading, and again while reading


class UnreadableSource(Exception):
    """A file that is not read: too large (code E0006) or not a regular file, or failing (E0001)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def read_limited(path: Path, limit: int = MAX_SOURCE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. The size is checked on the open file before
    reading (a 50 GB recipe was a MemoryError), and the read stops at limit + 1 bytes (a file growing
    meanwhile); FIFOs and devices (`/dev/zero`) are refused, since their size says nothing."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnreadableSource("E0001", "it is not a regular file")
            if info.st_size > limit:
                raise UnreadableSource("E0006", f"it is larger than {limit // 1_000_000} MB")
            data = handle.read(limit + 1)
    except OSError as exc:
        raise UnreadableSource("E0001", exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise UnreadableSource("E0006", f"it is larger than {limit // 1_000_000} MB")
    return data


def decode_error_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of the undecodable byte at `offset`."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    col = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return data.count(b"\n", 0, offset) + 1, col


@dataclass(frozen=True)
class Span:
    """A half-open region of a source file; lines and columns are 1-based, end_col exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col,
                "end_line": self.end_line, "end_col": self.end_col}

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def cover(self, other: "Span") -> "Span":
        """The smallest span containing both (same file assumed)."""
        start = min((self.line, self.col), (other.line, other.col))
        end = max((self.end_line, self.end_col), (other.end_line, other.end_col))
        return Span(self.file, start[0], start[1], end[0], end[1])


@dataclass
class SourceFile:
    """One recipe or stdlib module: its display name, text and (for local files) its path."""

    name: str
    text: str
    path: Path | None = None
    _lines: list[str] | None = field(default=None, repr=False)

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines

    def line_text(self, line: int) -> str:
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1].rstrip("\r")
        return ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "surrogateescape")).hexdigest()

    def span_at(self, line: int, col: int, length: int = 1) -> Span:
        return Span(self.name, line, col, line, col + max(length, 1))
