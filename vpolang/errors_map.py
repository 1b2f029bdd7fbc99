"""Pydantic validation errors -> vpo diagnostics at the recipe span of the offending value."""
from __future__ import annotations

from typing import Any

from .diagnostics import Note, Reporter, did_you_mean
from .evaluate import describe as _describe
from .schema.base import Word
from .source import Span

_CUSTOM = {"vpo_ref": "E0206", "vpo_scalar": "E0207", "vpo_unit": "E0208", "vpo_range": "E0203",
           "vpo_type": "E0204", "vpo_rule": "E0301", "vpo_slurm_name": "E0220", "vpo_sbatch_option": "E0221",
           "vpo_sbatch_value": "E0221", "vpo_path": "E0222", "vpo_url": "E0223", "vpo_plugin": "E0224"}
_RANGE = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
_RANGE_CTX = {"greater_than_equal": "ge", "greater_than": "gt", "less_than_equal": "le", "less_than": "lt"}


def data_path(data: Any, loc: tuple) -> tuple:
    """The path through the input data that pydantic's loc denotes, dropping union tags and
    validator labels that do not name a key or an index of the input."""
    path, cur = [], data
    for elem in loc:
        if isinstance(cur, dict) and elem == cur.get("kind") and elem not in cur:
            continue  # a discriminated union's tag (`online` in pairs.online.n), not a key of the input
        if isinstance(cur, dict) and isinstance(elem, str) and elem in cur:
            path.append(elem)
            cur = cur[elem]
        elif isinstance(cur, (list, tuple)) and isinstance(elem, int) and 0 <= elem < len(cur):
            path.append(elem)
            cur = cur[elem]
        elif isinstance(cur, dict) and isinstance(elem, str) and not path_has_tag(elem):
            path.append(elem)  # a missing field: keep its name, the span falls back to the parent
            cur = None
    return tuple(path)


def path_has_tag(elem: str) -> bool:
    return "[" in elem or elem.startswith("function-")


def span_for(path: tuple, spans: dict[tuple, Span], default: Span) -> Span:
    for n in range(len(path), -1, -1):
        if path[:n] in spans:
            return spans[path[:n]]
    return default


def report_validation(errors: list[dict], data: dict, spans: dict[tuple, Span], name_spans: dict[tuple, Span],
                      default: Span, what: str, schema_fields: list[str], reporter: Reporter,
                      scope_names: list[str], other_kinds: dict[str, list[str]]) -> None:
    """Translate every pydantic error (`ValidationError.errors()`, less those already reported); unions
    report once per location (the best branch's message)."""
    seen: set[tuple] = set()
    for e in _dedupe_union_errors(errors):
        path = data_path(data, tuple(e["loc"]))
        if path in seen:
            continue
        seen.add(path)
        _report_one(e, path, data, spans, name_spans, default, what, schema_fields, reporter, scope_names,
                    other_kinds)


def _dedupe_union_errors(errors: list[dict]) -> list[dict]:
    """For a value that failed every member of a union, keep one error: the one from a member whose
    tag matched, else a single 'wrong type' error."""
    return sorted(errors, key=lambda e: (e["type"] in ("union_tag_invalid", "model_type", "dict_type"), len(e["loc"])))


def _field_name(path: tuple) -> str:
    names = [p for p in path if isinstance(p, str)]
    return ".".join(names) if names else "value"


def _report_one(e, path, data, spans, name_spans, default, what, schema_fields, reporter, scope_names, other_kinds):
    etype, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    span = span_for(path, spans, default)
    field = _field_name(path)
    if isinstance(value, Word) and etype not in ("missing", "extra_forbidden"):
        expected = ctx.get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",") if o.strip(" '")]
        guess = did_you_mean(str(value), list(scope_names) + options)
        hint = f"did you mean `{guess}`?" if guess else (f"expected one of {expected}" if expected else None)
        reporter.add("E0101", f"unknown name `{value}`", span, hint=hint)
        return
    if etype == "extra_forbidden":
        leaf = path[-1] if path else "?"
        parent_fields = _fields_at(data, path[:-1], schema_fields)
        guess = did_you_mean(str(leaf), parent_fields)
        hint = f"did you mean `{guess}`?" if guess else None
        elsewhere = [k for k, fields in other_kinds.items() if leaf in fields]
        if not guess and elsewhere:
            hint = f"`{leaf}` is a field of {', '.join(elsewhere)} stages"
        reporter.add("E0201", f"unknown field `{leaf}` in {what}", name_spans.get(path, span), hint=hint)
    elif etype == "missing":
        leaf = path[-1] if path else "?"
        reporter.add("E0202", f"{what} is missing the required field `{leaf}`", span,
                     hint=f"add `{leaf} = ...`")
    elif etype in _RANGE:
        bound = ctx.get(_RANGE_CTX[etype])
        reporter.add("E0203", f"`{field}` must be {_RANGE[etype]} {bound}, got {_show(value)}", span)
    elif etype in ("too_short", "too_long"):
        reporter.add("E0203", f"`{field}` needs {'at least' if etype == 'too_short' else 'at most'} "
                     f"{ctx.get('min_length', ctx.get('max_length'))} item(s)", span)
    elif etype in _CUSTOM:
        code = _CUSTOM[etype]
        msg = e["msg"]
        if ctx.get("field_prefix"):
            msg = f"`{field}`: {msg}"
        if etype == "vpo_rule" and ctx.get("field"):
            target = path + (ctx["field"],)
            span = spans.get(target, span)
        reporter.add(code, msg, span, hint=ctx.get("hint"))
    elif etype == "literal_error":
        reporter.add("E0204", f"`{field}` must be one of {ctx.get('expected')}, got {_show(value)}", span)
    elif etype in ("union_tag_invalid", "union_tag_not_found"):
        tags = ctx.get("expected_tags", "")
        got = value.get("kind") if isinstance(value, dict) else None
        got_text = f"a `{got}` value" if got else _describe(value)
        reporter.add("E0204", f"`{field}` expects one of {tags}; got {got_text}", span)
    else:
        reporter.add("E0204", f"`{field}`: {_describe(value)} is not valid here ({e['msg'].lower()})", span)


def _fields_at(data: Any, path: tuple, top: list[str]) -> list[str]:
    return top if not path else []


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


__all__ = ["report_validation", "data_path", "span_for", "Note"]
