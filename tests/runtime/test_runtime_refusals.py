"""spec/language.md §10 lists every refusal the runtime can still make (vpolang/runtime_refusals.py):
each `raise JobError(...)` and `unsupported(...)` under runtime/ is one of its entries, and each entry
still names a raise. A new late refusal fails this test until it is listed with why it can only fail
at run time (or, better, is rejected at the recipe line)."""
from __future__ import annotations

import re
from pathlib import Path

from vpolang.runtime_refusals import KINDS, REFUSALS

ROOT = Path(__file__).resolve().parents[2]
SITE = re.compile(r"raise JobError\(|(?<!def )unsupported\((ctx|self\.ctx),")


def sites() -> list[tuple[str, int, str]]:
    """(module, line, the call's source up to its closing line) of every refusal under runtime/."""
    found = []
    for path in sorted((ROOT / "runtime").rglob("*.py")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if SITE.search(line):
                found.append((str(path.relative_to(ROOT)), i + 1, "\n".join(lines[i:i + 3])))
    return found


def test_every_runtime_refusal_is_listed_with_why_it_is_late():
    listed = [(r.module, r.says) for r in REFUSALS]
    unlisted = [f"{module}:{line}" for module, line, text in sites()
                if not any(m == module and says in text for m, says in listed)]
    assert not unlisted, f"runtime refusals missing from vpolang/runtime_refusals.py: {unlisted}"
    stale = [f"{m}: {says!r}" for m, says in listed
             if not any(module == m and says in text for module, _, text in sites())]
    assert not stale, f"entries of vpolang/runtime_refusals.py that name no raise any more: {stale}"
    assert all(r.kind in KINDS and r.why.strip() for r in REFUSALS)


def test_the_spec_lists_them():
    spec = (ROOT / "spec" / "language.md").read_text()
    section = spec[spec.index("## 10. Runtime refusals"):]
    assert all(r.module in section and r.why in section for r in REFUSALS)
