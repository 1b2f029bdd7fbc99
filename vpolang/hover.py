"""`vpo explain NAME --format markdown`: the same entries as `vpo explain`, as Markdown an editor shows
in a hover (VS Code's MarkdownString, LSP `MarkupContent`): headings bold, types and defaults as code,
fields as a list, stdlib declarations as a fenced `vpo` block."""
from __future__ import annotations

import inspect

from .diagnostics import CODES
from .explain import _all_schemas, _explain_stdlib, constraint_text, default_text, explain, field_rows, type_text


def explain_markdown(name: str) -> str:
    """Markdown for NAME; an unknown name gives the plain message (with its suggestion) unchanged."""
    if name in CODES:
        severity, summary = CODES[name]
        return f"**{name}** ({severity}): {_escape(summary)}"
    if name.startswith("std."):
        text = _explain_stdlib(name)
        return text if text.startswith("unknown name") else f"**{name}**\n\n```vpo\n{text.rstrip()}\n```"
    schemas = _all_schemas()
    head, _, field = name.partition(".")
    if head in schemas and not field:
        return _schema_markdown(head, schemas[head])
    if head in schemas and field in schemas[head].model_fields:
        info = schemas[head].model_fields[field]
        line = f"**{head}.{field}**: `{type_text(info.annotation)}` = `{default_text(info)}`" + _bounds(
            constraint_text(info))
        return line + (f"\n\n{_escape(info.description)}" if info.description else "")
    return explain(name)


def _schema_markdown(name: str, schema) -> str:
    doc = inspect.cleandoc(schema.__doc__ or "")
    summary = schema.summary or (doc.splitlines()[0] if doc else "")
    lines = [f"**{name}**" + (f": {_escape(summary)}" if summary else ""), ""]
    if doc:
        lines += [_escape(doc), ""]
    if schema.positional:
        lines.append("positional arguments: " + ", ".join(f"`{p}`" for p in schema.positional) + "  ")
    if schema.modifiers:
        lines.append("modifiers: " + ", ".join(f"`with {m}`" for m in schema.modifiers) + "  ")
    lines += ["fields:", ""]
    for fname, ftype, default, constraint, desc in field_rows(schema):
        lines.append(f"- `{fname}`: `{ftype}` = `{default}`{_bounds(constraint)}" + (f" — {_escape(desc)}" if desc
                                                                                    else ""))
    return "\n".join(lines)


def _bounds(constraint: str) -> str:
    return f" ({_escape(constraint)})" if constraint else ""


def _escape(text: str) -> str:
    """Characters Markdown would read as emphasis or markup in prose (`<=` stays, `*`/`_` do not)."""
    return "".join("\\" + c if c in "*_<>[]`" else c for c in text)
