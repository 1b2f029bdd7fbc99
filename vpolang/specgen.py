"""Generates the reference sections of spec/language.md from the schemas and the diagnostics table.

    python -m vpolang.specgen > spec/language.md      (a test fails when the committed file is stale)
"""
from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

from . import runtime_refusals
from .diagnostics import CODES, HINTS
from .explain import field_rows
from .schema.entities import CONSTRUCTORS, VALUE_CONSTRUCTORS
from .schema.stages import STAGES
from .schema.stages.common import TrainStage

HAND_WRITTEN = Path(__file__).resolve().parent.parent / "spec" / "language.intro.md"
GRPO_COMPOSITION = HAND_WRITTEN.with_name("language.grpo-composition.md")  # after GRPO's own modifiers


def table(schema) -> list[str]:
    rows = ["| field | type | default | constraint | description |", "|---|---|---|---|---|"]
    for name, ftype, default, constraint, desc in field_rows(schema):
        rows.append(f"| `{name}` | {ftype} | `{default}` | {constraint} | {desc} |".replace("\n", " "))
    return rows


def render() -> str:
    out = [HAND_WRITTEN.read_text().rstrip(), "", "## 6. Stage kinds", "",
           "Generated from `vpolang/schema/stages/` (`python -m vpolang.specgen`). Every stage also takes the "
           "placement `on CLUSTER`.", ""]
    for i, (kind, schema) in enumerate(STAGES.items(), 1):
        out += [f"### 6.{i} `{kind}` — {schema.summary}", "", inspect.cleandoc(schema.__doc__ or ""), ""]
        if schema.positional:
            out += [f"Positional argument: `{', '.join(schema.positional)}`.", ""]
        if schema.modifiers:
            out += [f"Modifiers: {', '.join('`with ' + m + '`' for m in schema.modifiers)} (section 7).", ""]
        out += table(schema) + [""]
    out += ["## 7. Modifiers", ""]
    mods = {m: typing.get_args(s.model_fields[m].annotation)[0] for s in STAGES.values() for m in s.modifiers}
    shared = [m for m in mods if all(m in s.modifiers for s in STAGES.values() if issubclass(s, TrainStage))]
    own = [m for m in mods if m not in shared]
    for i, name in enumerate(own, 1):  # the GRPO modifiers, then how they compose, then the shared ones
        out += _modifier(i, name, mods[name])
    out += [re.sub(r"^### 7\.\d+", f"### 7.{len(own) + 1}", GRPO_COMPOSITION.read_text().rstrip()), ""]
    for i, name in enumerate(shared, len(own) + 2):
        out += _modifier(i, name, mods[name])
    out += ["## 8. Constructors", ""]
    entries = [(f"{role} `{n}`", s) for role, group in CONSTRUCTORS.items() for n, s in group.items()]
    entries += [(f"value `{n}(...)`", s) for n, s in VALUE_CONSTRUCTORS.items()]
    for i, (title, schema) in enumerate(entries, 1):
        out += [f"### 8.{i} {title}", "", inspect.cleandoc(schema.__doc__ or ""), ""] + table(schema) + [""]
    out += ["## 9. Diagnostics", "", "| code | severity | meaning | hint |", "|---|---|---|---|"]
    out += [f"| {code} | {sev} | {text} | {_cell(HINTS.get(code, ''))} |" for code, (sev, text) in CODES.items()]
    out += ["", *runtime_refusals.render()]
    return "\n".join(out) + "\n"


def _modifier(i: int, name: str, schema) -> list[str]:
    return [f"### 7.{i} `with {name}` — {schema.summary}", "", inspect.cleandoc(schema.__doc__ or ""), ""] + \
        table(schema) + [""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


if __name__ == "__main__":
    print(render(), end="")
