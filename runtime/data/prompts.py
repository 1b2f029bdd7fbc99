"""Prompt files: .txt with one prompt a line (blank lines and `#` comments skipped) or .jsonl records
{"prompt": ...}."""
from __future__ import annotations

from pathlib import Path

from .errors import DataError
from .jsonl import read_jsonl, require


def read_prompts(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "prompt file does not exist")
    if path.suffix.lower() == ".jsonl":
        prompts = [_prompt(record, path, lineno) for lineno, record in read_jsonl(path, '{"prompt": ...}')]
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        lines = (line.strip() for line in text.splitlines())
        prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise DataError(path, "prompt file has no prompts")
    return prompts


def _prompt(record: dict, path: Path, lineno: int) -> str:
    prompt = require(record, "prompt", str, path, lineno).strip()
    if not prompt:
        raise DataError(path, "empty prompt", lineno)
    return prompt
