"""Rewrite every case's .diag from the current compiler: `python -m tests.conformance.regen`."""
from __future__ import annotations

from .cases import all_cases, diagnostics

if __name__ == "__main__":
    for case in all_cases():
        case.with_suffix(".diag").write_text("".join(line + "\n" for line in diagnostics(case)))
    print(f"wrote {len(all_cases())} .diag files")
