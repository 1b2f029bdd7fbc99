"""Expressions -> values. Numbers fold, names resolve, rewards and pair sources compose with `+`.

The result of evaluating a field is plain data for pydantic (dicts, lists, numbers, Word, Quantity),
and every sub-value's span is recorded under its path so validation errors land on the right token.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from . import ast
from .diagnostics import did_you_mean
from .parser import UNITS
from .schema.base import Quantity, Word
from .schema.entities import VALUE_CONSTRUCTORS
from .source import Span
from .values import ConstructorValue, DeclValue, IterateValue, ModuleValue, RoundValue, StageValue

if TYPE_CHECKING:
    from .check import Checker

MAX_INT = 10**64  # integer results: past float range, pydantic and str() fail on them
PAIR_KINDS = {"pairs", "synthetic", "on_policy", "online", "mix"}


class EvalError(Exception):
    """A problem already reported; evaluation of the enclosing field stops."""


class Env:
    """A lookup chain: round-local names, then iterate variables, then the module's symbols."""

    def __init__(self, checker: "Checker", module, local: dict[str, Any] | None = None, parent: "Env | None" = None):
        self.checker, self.module, self.local, self.parent = checker, module, local or {}, parent

    def child(self, local: dict[str, Any]) -> "Env":
        return Env(self.checker, self.module, local, self)

    def lookup(self, name: str, plain_only: bool = False) -> Any:
        """The value `name` denotes here; with plain_only, only `let`/`param` constants count (so that
        `metric = temporal_flicker` inside `reward temporal_flicker = ...` is a word, not a cycle)."""
        env = self
        while env is not None:
            if name in env.local:
                return env.local[name]
            env = env.parent
        return self.checker.lookup_global(self.module, name, plain_only)

    def visible_names(self) -> list[str]:
        names, env = [], self
        while env is not None:
            names.extend(env.local)
            env = env.parent
        return names + self.checker.global_names(self.module)


_MISSING = object()
FAILED = object()  # a symbol whose declaration had errors


class Evaluator:
    def __init__(self, checker: "Checker", env: Env, spans: dict[tuple, Span], words: bool = False):
        self.c, self.env, self.spans = checker, env, spans
        self.rep = checker.rep
        # In fields that take enum words or names (`pick = best_worst`, `dims = [vq, mq]`) a bare name
        # is a word unless it names a plain constant (`let`/`param`).
        self.words = words

    def error(self, code: str, message: str, span: Span, hint: str | None = None):
        self.rep.add(code, message, span, hint=hint)
        raise EvalError()

    # ---- entry points
    def data(self, expr: ast.Expr, path: tuple) -> Any:
        """Evaluate to plain data (what a schema validates), recording spans under `path`."""
        self.spans[path] = expr.span
        return self.to_data(self.value(expr, path), expr.span, path)

    def value(self, expr: ast.Expr, path: tuple = ()) -> Any:
        method = getattr(self, "_" + type(expr).__name__.lower())
        return method(expr, path)

    # ---- atoms
    def _number(self, e: ast.Number, path):
        if e.value is None:
            raise EvalError()  # a literal out of range, reported by the parser
        return e.value

    def _quantity(self, e: ast.Quantity, path):
        if e.unit not in UNITS or e.value is None:
            raise EvalError()  # reported by the parser
        dim, factor = UNITS[e.unit]
        value = e.value * factor
        if not math.isfinite(value):  # 1e308TB: finite digits, infinite bytes
            self.error("E0009", f"`{e.text}` is out of range", e.span, hint="use a smaller number")
        if dim == "count":
            return int(round(value)) if abs(value - round(value)) <= 1e-6 * abs(value) else value
        return Quantity(e.value, e.unit, dim, value)

    def _string(self, e: ast.String, path):
        return e.value

    def _bool(self, e: ast.Bool, path):
        return e.value

    def _name(self, e: ast.Name, path):
        found = self.env.lookup(e.name, plain_only=self.words)
        if found is FAILED:
            raise EvalError()  # its own declaration was reported already
        if found is _MISSING:
            return Word(e.name)
        if self.words and not isinstance(found, (int, float, str, list)):
            return Word(e.name)
        return found

    def _listexpr(self, e: ast.ListExpr, path):
        out = []
        for i, item in enumerate(e.items):
            self.spans[path + (i,)] = item.span
            out.append(self.to_data(self.value(item, path + (i,)), item.span, path + (i,)))
        return out

    # ---- structure
    def _attr(self, e: ast.Attr, path):
        obj = self.value(e.obj, path)
        return self.c.attribute(obj, e, self)

    def _index(self, e: ast.Index, path):
        obj = self.value(e.obj, path)
        idx = self.value(e.index, path)
        if isinstance(obj, IterateValue):
            if not isinstance(idx, int) or isinstance(idx, bool):
                self.error("E0204", "a round index must be a whole number", e.index.span)
            if not 1 <= idx <= len(obj.rounds):
                self.error("E0109", f"`{obj.name}` has rounds 1 to {len(obj.rounds)}; there is no round {idx}",
                           e.index.span, hint="rounds are numbered from 1")
            return RoundValue(obj, idx)
        if isinstance(obj, list) and isinstance(idx, int) and not isinstance(idx, bool):
            if -len(obj) <= idx < len(obj):
                return obj[idx]
            self.error("E0109", f"index {idx} is out of range for a list of {len(obj)}", e.index.span)
        self.error("E0108", f"cannot index {_describe(obj)}", e.span)

    def _call(self, e: ast.Call, path):
        # Built-in constructors win in call position: `pairs = online(...)` inside `stage online`.
        if isinstance(e.func, ast.Name) and e.func.name in VALUE_CONSTRUCTORS:
            func = ConstructorValue(e.func.name, "value")
        else:
            func = self.value(e.func, path)
        if isinstance(func, ConstructorValue) and func.role == "value":
            schema = VALUE_CONSTRUCTORS[func.name]
            return self.c.build_args(schema, func.name, e, self, path)
        if isinstance(func, DeclValue) and func.decl_kind in ("dataset", "model", "reward"):
            return self.c.override_decl(func, e, self)
        if isinstance(func, ConstructorValue) and func.role == "stage":
            self.error("E0204", f"`{func.name}(...)` declares a stage: write `stage NAME = {func.name}(...)`",
                       e.span)
        if isinstance(func, ConstructorValue):
            self.error("E0204", f"`{func.name}` builds a {func.role}: use it in a `{func.role}` declaration",
                       e.span)
        if isinstance(func, Word):
            self._unknown(func, e.func.span)
        self.error("E0204", f"{_describe(func)} cannot be called", e.func.span)

    def _unknown(self, word: Word, span: Span):
        guess = did_you_mean(str(word), self.env.visible_names() + list(VALUE_CONSTRUCTORS))
        self.error("E0101", f"unknown name `{word}`", span, hint=f"did you mean `{guess}`?" if guess else None)

    # ---- operators
    def _unary(self, e: ast.Unary, path):
        val = self.value(e.operand, path)
        if e.op == "not":
            if isinstance(val, bool):
                return not val
            self.error("E0209", "`not` needs a boolean", e.span)
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            return -val
        if isinstance(val, Quantity):
            return Quantity(-val.value, val.unit, val.dimension, -val.normalised)
        rew = self._as_reward_sum(val, e.operand.span)
        if rew is not None:
            return _scale_sum(rew, -1.0)
        self._bad_operand(val, e.operand.span, "-")

    def _binary(self, e: ast.Binary, path):
        left, right = self.value(e.left, path), self.value(e.right, path)
        if e.op in ("and", "or"):
            if isinstance(left, bool) and isinstance(right, bool):
                return (left and right) if e.op == "and" else (left or right)
            self.error("E0209", f"`{e.op}` needs booleans", e.span)
        if _is_num(left) and _is_num(right):
            return self._arith(e, left, right)
        if isinstance(left, Quantity) or isinstance(right, Quantity):
            return self._quantity_arith(e, left, right)
        if isinstance(left, str) and isinstance(right, str) and not isinstance(left, Word) \
                and not isinstance(right, Word) and e.op == "+":
            return left + right
        pairs = self._pair_sum(e, left, right)
        if pairs is not None:
            return pairs
        return self._reward_arith(e, left, right)

    def _arith(self, e, a, b):
        if e.op == "/" and b == 0:
            self.error("E0213", "division by zero", e.right.span)
        out = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if e.op == "/" else 0}[e.op]
        if isinstance(out, float) and not math.isfinite(out):
            self.error("E0209", "the result is not a finite number", e.span)
        if isinstance(out, int) and abs(out) > MAX_INT:  # repeated products grow without bound
            self.error("E0209", "the result is too large (more than 1e64)", e.span)
        return out

    def _quantity_arith(self, e, a, b):
        if isinstance(a, Quantity) and isinstance(b, Quantity) and e.op in "+-" and a.dimension == b.dimension \
                and a.dimension != "resolution":
            total = a.normalised + b.normalised if e.op == "+" else a.normalised - b.normalised
            base = UNITS[a.unit][1]
            if not math.isfinite(total):
                self.error("E0209", "the result is not a finite number", e.span)
            return Quantity(total / base, a.unit, a.dimension, total)
        if e.op in "*/" and (_is_num(a) or _is_num(b)) and "resolution" not in (
                getattr(a, "dimension", ""), getattr(b, "dimension", "")):
            q, k = (a, b) if isinstance(a, Quantity) else (b, a)
            if e.op == "/" and not isinstance(b, Quantity):
                if b == 0:
                    self.error("E0213", "division by zero", e.right.span)
                k = 1 / b
            elif e.op == "/":
                self.error("E0209", "cannot divide by a quantity", e.span)
            scaled = Quantity(q.value * k, q.unit, q.dimension, q.normalised * k)
            if not math.isfinite(scaled.normalised) or not math.isfinite(scaled.value):
                self.error("E0209", "the result is not a finite number", e.span)
            return scaled
        self.error("E0209", f"cannot apply `{e.op}` to {_describe(a)} and {_describe(b)}", e.span,
                   hint="quantities add to quantities of the same kind and scale by numbers")

    def _pair_sum(self, e, a, b):
        da, db = self._pair_data(a, e.left), self._pair_data(b, e.right)
        if da is None and db is None:
            return None
        if da is None or db is None or e.op != "+":
            self.error("E0209", "pair sources combine only with `+`, and only with other pair sources", e.span)
        items = (da["sources"] if da["kind"] == "mix" else [da]) + (db["sources"] if db["kind"] == "mix" else [db])
        return {"kind": "mix", "sources": items}

    def _pair_data(self, v, node):
        if isinstance(v, dict) and v.get("kind") in PAIR_KINDS:
            return v
        if isinstance(v, DeclValue) and v.decl_kind == "dataset" and v.spec.get("kind") == "pairs":
            return dict(v.spec)
        return None

    def _reward_arith(self, e, a, b):
        if e.op in "+-":
            ra, rb = self._as_reward_sum(a, e.left.span), self._as_reward_sum(b, e.right.span)
            if ra is None:
                self._bad_operand(a, e.left.span, e.op)
            if rb is None:
                self._bad_operand(b, e.right.span, e.op)
            if e.op == "-":
                rb = _scale_sum(rb, -1.0)
            return {"kind": "sum", "terms": ra["terms"] + rb["terms"]}
        # * and /: one side a number
        if _is_num(a) and e.op == "*":
            rb = self._as_reward_sum(b, e.right.span)
            if rb is not None:
                return _scale_sum(rb, float(a))
        if _is_num(b):
            ra = self._as_reward_sum(a, e.left.span)
            if ra is not None:
                if e.op == "/" and b == 0:
                    self.error("E0213", "division by zero", e.right.span)
                return _scale_sum(ra, float(b) if e.op == "*" else 1.0 / b)
        for v, node in ((a, e.left), (b, e.right)):
            if not _is_num(v) and self._as_reward_sum(v, node.span) is None:
                self._bad_operand(v, node.span, e.op)
        self.error("E0209", "rewards can be scaled by numbers, not multiplied together", e.span)

    def _as_reward_sum(self, v, span):
        if isinstance(v, dict) and v.get("kind") == "sum":
            return v
        ref = self.c.reward_ref(v)
        if ref is not None:
            return {"kind": "sum", "terms": [{"weight": 1.0, "reward": ref}]}
        return None

    def _bad_operand(self, v, span, op):
        if isinstance(v, Word):
            self._unknown(v, span)
        self.error("E0209", f"cannot use {_describe(v)} with `{op}`", span)

    def _compare(self, e: ast.Compare, path):
        left, right = self.value(e.left, path), self.value(e.right, path)
        if _is_num(left) and _is_num(right):
            return {">=": left >= right, "<=": left <= right, ">": left > right, "<": left < right,
                    "==": left == right, "!=": left != right}[e.op]
        flip = {">=": "<=", "<=": ">=", ">": "<", "<": ">"}
        ref, threshold, op = self.c.reward_ref(left), right, e.op
        if ref is None:
            ref, threshold, op = self.c.reward_ref(right), left, flip.get(e.op, e.op)
        if ref is None or not _is_num(threshold):
            for v, node in ((left, e.left), (right, e.right)):
                if isinstance(v, Word):
                    self._unknown(v, node.span)
            self.error("E0209", "a comparison needs a reward on one side and a number on the other", e.span)
        if op in ("==", "!="):
            self.error("E0209", f"a gate cannot use `{op}`; use >=, >, <= or <", e.span)
        return {"kind": "gate", "reward": ref, "op": op, "threshold": float(threshold)}

    # ---- values -> data
    def to_data(self, v: Any, span: Span, path: tuple) -> Any:
        if isinstance(v, DeclValue):
            if v.decl_kind == "model":
                return {"ref": "model", "name": v.name, "spec": v.spec}
            if v.decl_kind == "reward":
                return self.c.reward_ref(v)
            if v.decl_kind == "dataset":
                return dict(v.spec)
            self.error("E0214", f"cluster `{v.name}` can only be used after `on`", span)
        if isinstance(v, StageValue):
            return v.ref()
        if isinstance(v, ConstructorValue):
            if v.role == "value":
                return Word(v.name)  # a bare `reverse` / `frozen`: schemas accept the word
            self.error("E0204", f"`{v.name}` is a {v.role} constructor, not a value", span)
        if isinstance(v, ModuleValue):
            self.error("E0204", f"module `{v.name}` is not a value; pick one of its names, e.g. `{v.name}.x`", span)
        if isinstance(v, (IterateValue, RoundValue)):
            name = v.name if isinstance(v, IterateValue) else f"{v.iterate.name}[{v.index}]"
            self.error("E0204", f"`{name}` is an iterate block; use one of its names, e.g. `{name}.<stage>`", span)
        return v


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scale_sum(s: dict, k: float) -> dict:
    return {"kind": "sum", "terms": [{"weight": t["weight"] * k, "reward": t["reward"]} for t in s["terms"]]}


def _describe(v) -> str:
    if isinstance(v, DeclValue):
        return f"{v.decl_kind} `{v.name}`"
    if isinstance(v, StageValue):
        return f"{v.kind} stage `{v.id}`"
    if isinstance(v, ModuleValue):
        return f"module `{v.name}`"
    if isinstance(v, ConstructorValue):
        return f"`{v.name}`"
    if isinstance(v, Word):
        return f"`{v}`"
    if isinstance(v, bool):
        return "a boolean"
    if _is_num(v):
        return f"the number {v:g}"
    if isinstance(v, Quantity):
        return f"`{v}`"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, dict) and v.get("kind"):
        return f"a `{v['kind']}` value"
    if isinstance(v, dict) and v.get("ref"):
        return f"{v['ref']} `{v.get('name')}`"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, (IterateValue, RoundValue)):
        return "an iterate block"
    return type(v).__name__


MISSING = _MISSING
describe = _describe
