"""Source files and spans: where every AST node, diagnostic and plan job points back to."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


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
