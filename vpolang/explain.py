"""`vpo explain NAME`: documentation generated from the schemas, the stdlib and the diagnostics table."""
from __future__ import annotations

import inspect
import typing

from pydantic.fields import FieldInfo

from .diagnostics import CODES, HINTS, did_you_mean
from .schema.base import Schema, schema_fields
from .schema.entities import CONSTRUCTORS, VALUE_CONSTRUCTORS
from .schema.stages import STAGES


def type_text(annotation) -> str:
    """A readable type: `int`, `video_source`, `linear | cosine | number`, `list of reward`."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = type_text(args[0])
        return {"dict[str, Any]": "reference"}.get(inner, inner)
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, __import__("types").UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        text = " | ".join(dict.fromkeys(parts))
        return text + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {type_text(args[0])}" if args else "list"
    if isinstance(annotation, type) and issubclass(annotation, Schema):
        kind = annotation.model_fields.get("kind")
        return str(kind.default) if kind is not None and kind.default else annotation.__name__.lower()
    return getattr(annotation, "__name__", str(annotation))


def constraint_text(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "min items")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
    return ", ".join(parts)


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return repr(info.default_factory())
    return repr(info.default)


def field_rows(schema: type[Schema]) -> list[tuple[str, str, str, str, str]]:
    return [(name, type_text(info.annotation), default_text(info), constraint_text(info), info.description or "")
            for name, info in schema_fields(schema) if name not in schema.modifiers]


def explain_schema(name: str, schema: type[Schema]) -> str:
    doc = inspect.cleandoc(schema.__doc__ or "")
    lines = [f"{name}: {schema.summary or doc.splitlines()[0] if doc else name}", ""]
    if doc:
        lines += [doc, ""]
    if schema.positional:
        lines.append(f"positional arguments: {', '.join(schema.positional)}")
    if schema.modifiers:
        lines.append(f"modifiers: {', '.join('with ' + m for m in schema.modifiers)}")
    lines.append("fields:")
    for fname, ftype, default, constraint, desc in field_rows(schema):
        extra = f" [{constraint}]" if constraint else ""
        lines.append(f"  {fname}: {ftype} = {default}{extra}" + (f"\n      {desc}" if desc else ""))
    return "\n".join(lines)


def _all_schemas() -> dict[str, type[Schema]]:
    table: dict[str, type[Schema]] = dict(STAGES)
    for group in CONSTRUCTORS.values():
        table.update(group)
    table.update(VALUE_CONSTRUCTORS)
    for stage in STAGES.values():
        for mod in stage.modifiers:
            table[mod] = typing.get_args(stage.model_fields[mod].annotation)[0]
    return table


def explain(name: str) -> str:
    if name in CODES:
        severity, summary = CODES[name]
        return f"{name} ({severity}): {summary}\nhint: {HINTS[name]}" if name in HINTS else f"{name} ({severity}): {summary}"
    if name.startswith("std."):
        return _explain_stdlib(name)
    schemas = _all_schemas()
    head, _, field = name.partition(".")
    if head in schemas and not field:
        return explain_schema(head, schemas[head])
    if head in schemas and field in schemas[head].model_fields:
        info = schemas[head].model_fields[field]
        constraint = constraint_text(info)
        return (f"{head}.{field}: {type_text(info.annotation)} = {default_text(info)}"
                + (f" [{constraint}]" if constraint else "") + (f"\n{info.description}" if info.description else ""))
    options = list(schemas) + list(CODES) + [f"{k}.{f}" for k, s in schemas.items() for f in s.model_fields]
    guess = did_you_mean(name, options)
    return f"unknown name `{name}`" + (f"; did you mean `{guess}`?" if guess else "")


def _explain_stdlib(name: str) -> str:
    from .modules import STDLIB_DIR

    parts = name.split(".")
    path = STDLIB_DIR / f"{parts[1]}.vpo" if len(parts) > 1 else None
    if path is None or not path.exists():
        return f"unknown name `{name}`"
    text = path.read_text()
    if len(parts) == 2:
        return text
    for line_no, line in enumerate(text.splitlines()):
        words = line.split()
        if len(words) > 2 and words[1] == parts[2] and words[0] in ("model", "dataset", "reward"):
            block = [line]
            for nxt in text.splitlines()[line_no + 1:]:
                if nxt.startswith(("model ", "dataset ", "reward ", "#")) or not nxt.strip():
                    break
                block.append(nxt)
            return "\n".join(block)
    return f"unknown name `{name}` in std.{parts[1]}"
