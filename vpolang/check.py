"""Name resolution and checking: declarations, stages and iterate blocks become validated values.

Symbols are evaluated lazily on first use (so order of declaration does not matter) with cycle
detection; the recipe's own items are then forced in order. Every problem goes to the reporter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from . import ast
from .diagnostics import Note, Reporter, did_you_mean
from .errors_map import report_validation
from .evaluate import FAILED, MISSING, Env, EvalError, Evaluator, describe
from .modules import STDLIB_DIR, ModuleLoader, ModuleScope, Symbol
from .parser import parse_expression
from .schema.base import Schema, Word, takes_words
from .schema.entities import CONSTRUCTORS, VALUE_CONSTRUCTORS
from .schema.stages import PRODUCES, STAGES
from .source import SourceFile, Span
from .composition_rules import grpo_composition_rules, pair_source_rules, validation_rules
from .values import ConstructorValue, DeclValue, IterateValue, ModuleValue, RoundValue, StageValue

MAX_ROUNDS = 100
CLI_FILE = "<command line>"


@dataclass
class CheckedRecipe:
    source: SourceFile
    stages: list[StageValue]
    params: dict[str, Any]
    sources: dict[str, SourceFile]
    budget_usd: float | None = None
    clusters: list[DeclValue] = field(default_factory=list)
    decls: list[DeclValue] = field(default_factory=list)


class Checker:
    def __init__(self, reporter: Reporter, root_dir: Path | None, overrides: dict[str, str] | None = None):
        self.rep = reporter
        self.loader = ModuleLoader(reporter, root_dir)
        self.stages: dict[str, StageValue] = {}
        self.overrides = dict(overrides or {})
        self.override_source = SourceFile(CLI_FILE, " ".join(f"--set {k}={v}" for k, v in self.overrides.items()))
        self.prelude: ModuleScope | None = None
        self.params: dict[str, Any] = {}
        self.decls: list[DeclValue] = []  # every checked declaration, for the data preflight's spans

    # ---- entry
    def check(self, source: SourceFile) -> CheckedRecipe:
        self.loader.sources[CLI_FILE] = self.override_source
        self.prelude = self.loader.stdlib(("std", "prelude"), source.span_at(1, 1))
        key = str(source.path) if source.path else source.name
        self.loader.loading.append(key)
        main = self.loader.load_source(source, key, is_stdlib=False)
        self.loader.loading.pop()
        self._check_overrides(main)
        for name in _constants_bottom_up(main):
            self.force(main.symbols[name])
        for item in main.tree.items:
            name = _item_name(item)
            if name in main.symbols and main.symbols[name].node is item:
                self.force(main.symbols[name])
        self._warn_unused(main)
        return CheckedRecipe(source, list(self.stages.values()), self.params, self.loader.sources,
                             decls=self.decls)

    def check_module(self, scope: ModuleScope) -> None:
        for sym in scope.symbols.values():
            self.force(sym)

    # ---- symbols
    def force(self, sym: Symbol) -> Any:
        if sym.state == "done":
            return sym.value
        if sym.state == "busy":
            self.rep.add("E0107", f"`{sym.name}` depends on itself", _item_span(sym.node),
                         hint="a declaration cannot refer to itself, directly or through others")
            return FAILED
        sym.state = "busy"
        try:
            sym.value = self._evaluate_item(sym.node, sym.module)
        except EvalError:
            sym.value = None
        except RecursionError:
            self.rep.add("E0006", "the recipe is nested too deeply to check", _item_span(sym.node))
            sym.value = None
        sym.state = "done"
        if sym.value is None:
            sym.value = FAILED
        return sym.value

    def lookup_global(self, module: ModuleScope, name: str, plain_only: bool = False) -> Any:
        sym = module.symbols.get(name)
        if plain_only:
            if sym is not None and isinstance(sym.node, (ast.Let, ast.Param)):
                sym.used = True
                return self.force(sym)
            return MISSING
        if sym is not None:
            sym.used = True
            return self.force(sym)
        if self.prelude is not None and module is not self.prelude and name in self.prelude.symbols:
            return self.force(self.prelude.symbols[name])
        if name in STAGES:
            return ConstructorValue(name, "stage")
        if name in VALUE_CONSTRUCTORS:
            return ConstructorValue(name, "value")
        for role, table in CONSTRUCTORS.items():
            if name in table:
                return ConstructorValue(name, role)
        return MISSING

    def global_names(self, module: ModuleScope) -> list[str]:
        names = list(module.symbols)
        if self.prelude is not None:
            names += list(self.prelude.symbols)
        return names + list(STAGES) + list(VALUE_CONSTRUCTORS) + [n for t in CONSTRUCTORS.values() for n in t]

    def _evaluate_item(self, node, module: ModuleScope) -> Any:
        env = Env(self, module)
        if isinstance(node, ast.UseModule):
            scope = self.loader.stdlib(node.module, node.span)
            return self._import(scope, ".".join(node.module), node.alias or node.module[-1])
        if isinstance(node, ast.UseFile):
            scope = self.loader.local(node, module)
            return self._import(scope, node.path, node.alias)
        if isinstance(node, ast.Let):
            return Evaluator(self, env, {}).value(node.value)
        if isinstance(node, ast.Param):
            return self._param(node, env, module)
        if isinstance(node, ast.Decl):
            return self.declare(node, env, prefix="")
        if isinstance(node, ast.Iterate):
            return self._iterate(node, env)
        return None

    def _import(self, scope: ModuleScope | None, name: str, alias: str) -> ModuleValue | None:
        if scope is None:
            return None
        return ModuleValue(alias, scope)

    # ---- params and --set
    def _param(self, node: ast.Param, env: Env, module: ModuleScope) -> Any:
        default = Evaluator(self, env, {}).value(node.value)
        if module.is_stdlib or node.name not in self.overrides:
            if not module.is_stdlib:
                self.params[node.name] = _plain(default)
            return default
        text = self.overrides[node.name]
        span = self._override_span(node.name)
        expr = parse_expression(text, CLI_FILE, Reporter())
        if expr is None:
            self.rep.add("E0113", f"`--set {node.name}={text}`: the value is not one expression", span,
                         hint="quote the whole value; text after the expression is not ignored")
            return default
        value = Evaluator(self, env, {}).value(_shift(expr, span))
        if _kind(value) != _kind(default):
            self.rep.add("E0113", f"`--set {node.name}={text}`: expected {_kind(default)} like the default, "
                         f"got {_kind(value)}", span, notes=[Note("declared here", node.name_span)])
            return default
        self.params[node.name] = _plain(value)
        return value

    def _override_span(self, name: str) -> Span:
        text = self.override_source.text
        start = text.find(f"--set {name}=")
        length = len(f"--set {name}={self.overrides[name]}")
        return Span(CLI_FILE, 1, start + 1, 1, start + 1 + length)

    def _check_overrides(self, main: ModuleScope) -> None:
        declared = [n for n, s in main.symbols.items() if isinstance(s.node, ast.Param)]
        for name in self.overrides:
            if name not in declared:
                guess = did_you_mean(name, declared)
                hint = f"did you mean `{guess}`?" if guess else (
                    "declared params: " + ", ".join(declared) if declared else "the recipe declares no `param`")
                self.rep.add("E0112", f"the recipe has no param `{name}`", self._override_span(name), hint=hint)

    # ---- declarations
    def declare(self, node: ast.Decl, env: Env, prefix: str) -> Any:
        if node.kind != "stage" and node.kind not in CONSTRUCTORS:
            return None  # an unknown declaration keyword, reported by the parser
        if node.kind == "stage":
            return self._stage(node, env, prefix)
        return self._entity(node, env)

    def _entity(self, node: ast.Decl, env: Env) -> DeclValue | None:
        """model / dataset / reward / cluster: a constructor or another declaration, then overrides."""
        spans: dict[tuple, Span] = {(): node.name_span}
        name_spans: dict[tuple, Span] = {}
        ev = Evaluator(self, env, spans)
        base_expr, call_args = (node.value.func, node.value.args) if isinstance(node.value, ast.Call) \
            else (node.value, ())
        table = CONSTRUCTORS[node.kind]
        if node.kind == "reward" and _is_reward_expression(node.value):
            return self._reward_expression(node, ev)
        # A constructor name in this position is always the constructor (`reward aesthetic = aesthetic`).
        if isinstance(base_expr, ast.Name) and base_expr.name in table:
            base = ConstructorValue(base_expr.name, node.kind)
        else:
            base = ev.value(base_expr)
        if isinstance(base, ConstructorValue) and base.name in table:
            data: dict[str, Any] = {"kind": base.name}
            schema = table[base.name]
        elif isinstance(base, DeclValue) and base.decl_kind == node.kind:
            data = dict(base.spec)
            schema = table[data["kind"]]
        else:
            options = ", ".join(f"`{k}`" for k in table)
            if isinstance(base, Word):
                guess = did_you_mean(str(base), list(table) + env.visible_names())
                self.rep.add("E0101", f"unknown name `{base}`", base_expr.span,
                             hint=f"did you mean `{guess}`?" if guess else f"a {node.kind} is built by {options}")
            else:
                self.rep.add("E0205", f"a {node.kind} declaration needs a {node.kind} constructor ({options}) or "
                             f"another {node.kind}, got {describe(base)}", base_expr.span)
            return None
        self._fill(data, schema, call_args, node.body.fields if node.body else (), ev, spans, name_spans,
                   f"{node.kind} `{node.name}`")
        if node.body and node.body.modifiers:
            mod = node.body.modifiers[0]
            self.rep.add("E0210", f"`with {mod.name}` applies to stages, not to a {node.kind}", mod.name_span)
        if node.on is not None:
            self.rep.add("E0214", f"`on` places stages on clusters; a {node.kind} runs nowhere", node.on.span)
        spec = self._validate(schema, data, spans, name_spans, node.name_span, f"{node.kind} `{node.name}`",
                              env)
        if spec is None:
            return None
        value = DeclValue(node.kind, node.name, spec, node.span, spans)
        self.decls.append(value)
        return value

    def _reward_expression(self, node: ast.Decl, ev: Evaluator) -> dict | None:
        """`reward combo = 0.7 * a + 0.3 * b` or `= joint([a, b])`: a name for the expression, usable
        wherever a weighted or joint reward is (`reward = combo`), checked there as if written there."""
        if node.body is not None:
            self.rep.add("E0205", f"reward `{node.name}` names a reward expression, which takes no `{{...}}` "
                         "block; set the fields on the rewards inside it", node.body.span if hasattr(node.body, "span")
                         else node.name_span)
            return None
        if node.on is not None:
            self.rep.add("E0214", "`on` places stages on clusters; a reward runs nowhere", node.on.span)
        value = ev.value(node.value)
        if isinstance(value, dict) and value.get("kind") in ("sum", "joint"):
            return value
        self.rep.add("E0205", f"a reward declaration needs a reward constructor, another reward or a reward "
                     f"expression (a weighted sum or `joint(...)`), got {describe(value)}", node.value.span)
        return None

    def override_decl(self, decl: DeclValue, call: ast.Call, ev: Evaluator) -> DeclValue | None:
        """`shapes.videos(n = 512)`: a declaration with some fields replaced."""
        spans: dict[tuple, Span] = {(): call.span}
        name_spans: dict[tuple, Span] = {}
        sub = Evaluator(self, ev.env, spans)
        data = dict(decl.spec)
        schema = CONSTRUCTORS[decl.decl_kind][data["kind"]]
        self._fill(data, schema, call.args, (), sub, spans, name_spans, f"{decl.decl_kind} `{decl.name}`",
                   override=True)
        spec = self._validate(schema, data, spans, name_spans, call.span, f"{decl.decl_kind} `{decl.name}`", ev.env)
        if spec is None:
            raise EvalError()
        return DeclValue(decl.decl_kind, decl.name, spec, call.span)

    def build_args(self, schema: type[Schema], name: str, call: ast.Call, ev: Evaluator, path: tuple) -> dict:
        """A constructor call inside a value: `on_policy(rl, n = 4)` -> {"kind": "on_policy", ...}."""
        data: dict[str, Any] = {"kind": name}
        sub_spans: dict[tuple, Span] = {}
        self._fill(data, schema, call.args, (), Evaluator(self, ev.env, sub_spans), sub_spans, {}, f"`{name}(...)`")
        if "__failed__" in data:
            raise EvalError()  # an argument was already reported; the enclosing field fails with it
        for sub_path, span in sub_spans.items():
            ev.spans[path + sub_path] = span
        return data

    def _fill(self, data, schema, args, fields, ev: Evaluator, spans, name_spans, what, override=False) -> None:
        """Positional args, keyword args and body fields into `data`; duplicates are errors."""
        given: dict[str, Span] = {}
        positional = list(schema.positional)
        for arg in args:
            if arg.name is None:
                if not positional:
                    self.rep.add("E0211", f"{what} takes no more positional arguments", arg.span,
                                 hint="name the argument: `field = value`" if schema.positional else None)
                    continue
                key = positional.pop(0)
            else:
                key = arg.name
                if key in positional:
                    positional.remove(key)
            self._set(data, key, arg.value, arg.span if arg.name else arg.value.span, given, ev, spans,
                      name_spans, what, schema)
        for f in fields:
            self._set(data, f.name, f.value, f.name_span, given, ev, spans, name_spans, what, schema)

    def _set(self, data, key, expr, key_span, given, ev, spans, name_spans, what, schema) -> None:
        if key in given:
            self.rep.add("E0211", f"`{key}` is given twice in {what}", key_span,
                         notes=[Note("first given here", given[key])])
            return
        given[key] = key_span
        name_spans[(key,)] = key_span
        field = schema.model_fields.get(key)
        ev.words = field is not None and takes_words(field.annotation)
        try:
            data[key] = ev.data(expr, (key,))
        except EvalError:
            data.pop(key, None)
            data.setdefault("__failed__", []).append(key)

    def _validate(self, schema, data, spans, name_spans, span, what, env: Env) -> dict | None:
        failed = data.pop("__failed__", None)
        try:
            model = schema.model_validate(data)
        except ValidationError as err:
            # Fields that already failed to evaluate are reported; do not add "missing" noise for them.
            errs = [e for e in err.errors(include_url=False) if not (failed and e["type"] == "missing" and e["loc"]
                                                                     and e["loc"][0] in failed)]
            if errs:
                report_validation(errs, data, spans, name_spans, span, what, list(schema.model_fields),
                                  self.rep, env.visible_names(), _other_stage_fields(schema))
            return None
        if failed:
            return None
        return model.model_dump(mode="json")

    # ---- stages
    def _stage(self, node: ast.Decl, env: Env, prefix: str) -> StageValue | None:
        stage_id = prefix + node.name
        spans: dict[tuple, Span] = {(): node.name_span}
        name_spans: dict[tuple, Span] = {}
        ev = Evaluator(self, env, spans)
        if not isinstance(node.value, ast.Call):
            kind_val = ev.value(node.value) if not isinstance(node.value, ast.Call) else None
            self.rep.add("E0205", f"a stage is declared as `kind(policy)`, e.g. `sft(base)`; got "
                         f"{describe(kind_val)}", node.value.span)
            return None
        callee = node.value.func
        # The stage kind in `stage sft = sft(base)` is always the kind, even where a stage shares its name.
        func = ConstructorValue(callee.name, "stage") if isinstance(callee, ast.Name) and callee.name in STAGES \
            else ev.value(callee)
        if not (isinstance(func, ConstructorValue) and func.role == "stage"):
            guess = did_you_mean(str(func), list(STAGES)) if isinstance(func, Word) else None
            hint = f"did you mean `{guess}`?" if guess else "stage kinds: " + ", ".join(STAGES)
            self.rep.add("E0205", f"{describe(func)} is not a stage kind", node.value.func.span, hint=hint)
            return None
        kind = func.name
        schema = STAGES[kind]
        data: dict[str, Any] = {"kind": kind}
        what = f"{kind} stage `{stage_id}`"
        body = node.body or ast.Body(node.span, (), ())
        self._fill(data, schema, node.value.args, body.fields, ev, spans, name_spans, what)
        self._modifiers(data, schema, body.modifiers, ev, spans, name_spans, what)
        cluster = self._cluster(node, env)
        self._inherit_prompts(data)
        config = self._validate(schema, data, spans, name_spans, node.name_span, what, env)
        if config is None:
            return None
        if not self._stage_rules(config, kind, spans, node):
            return None
        policy = config.get("policy")
        base_model = None
        if isinstance(policy, dict):
            base_model = policy["spec"] if policy.get("ref") == "model" else policy.get("base_model")
        heads = list(config["dims"]) if kind == "reward_model" else []
        value = StageValue(stage_id, kind, PRODUCES[kind], config, node.span, cluster, base_model, heads, spans)
        self.stages[stage_id] = value
        return value

    def _modifiers(self, data, schema, modifiers, ev, spans, name_spans, what) -> None:
        for mod in modifiers:
            if mod.name not in schema.modifiers:
                allowed = [k for k, s in STAGES.items() if mod.name in s.modifiers]
                hint = (f"`{mod.name}` applies to {', '.join(allowed)} stages" if allowed else
                        "modifiers: " + ", ".join(sorted({m for s in STAGES.values() for m in s.modifiers})))
                self.rep.add("E0210", f"{what} has no modifier `{mod.name}`", mod.name_span, hint=hint)
                continue
            if mod.name in data:
                self.rep.add("E0211", f"`with {mod.name}` is given twice", mod.name_span)
                continue
            mod_data: dict[str, Any] = {}
            spans[(mod.name,)] = mod.name_span
            name_spans[(mod.name,)] = mod.name_span
            sub_spans: dict[tuple, Span] = {}
            sub_names: dict[tuple, Span] = {}
            self._fill(mod_data, schema.model_fields[mod.name].annotation.__args__[0], (), mod.fields,
                       Evaluator(self, ev.env, sub_spans), sub_spans, sub_names, f"`with {mod.name}`")
            for p, s in sub_spans.items():
                spans[(mod.name,) + p] = s
            for p, s in sub_names.items():
                name_spans[(mod.name,) + p] = s
            failed = mod_data.pop("__failed__", None)
            if failed:
                data.setdefault("__failed__", []).append(mod.name)
            data[mod.name] = mod_data

    def _cluster(self, node: ast.Decl, env: Env) -> DeclValue | None:
        if node.on is None:
            return None
        value = env.lookup(node.on.name)
        if isinstance(value, DeclValue) and value.decl_kind == "cluster":
            return value
        if value is MISSING or value is None:
            names = [n for n in env.visible_names()]
            guess = did_you_mean(node.on.name, names)
            self.rep.add("E0101", f"unknown cluster `{node.on.name}`", node.on.span,
                         hint=f"did you mean `{guess}`?" if guess else "declare it: `cluster NAME = slurm { ... }`")
        else:
            self.rep.add("E0214", f"`on` needs a cluster, got {describe(value)}", node.on.span)
        return None

    def _inherit_prompts(self, data: dict) -> None:
        """on_policy(rl, ...) without prompts samples the prompts `rl` was trained on."""
        for src in _pair_leaves(data.get("pairs")) + _pair_leaves(data.get("labels")) + _pair_leaves(data.get("data")):
            if src.get("kind") == "on_policy" and "prompts" not in src:
                pol = src.get("policy")
                if isinstance(pol, dict) and pol.get("ref") == "stage":
                    stage = self.stages.get(pol["name"])
                    if stage is not None and "prompts" in stage.config:
                        src["prompts"] = stage.config["prompts"]

    def _stage_rules(self, config: dict, kind: str, spans, node: ast.Decl) -> bool:
        ok = True
        for src in _pair_leaves(config.get("pairs")) + _pair_leaves(config.get("labels")) + _pair_leaves(config.get("data")):
            if src.get("kind") == "on_policy" and src.get("prompts") is None:
                self.rep.add("E0202", "on_policy(...) needs `prompts` (its policy has none to inherit)",
                             spans.get(("pairs",), spans.get(("data",), node.name_span)),
                             hint="add `prompts = <a prompts dataset>`")
                ok = False
        if kind == "dpo":
            leaves = _pair_leaves(config["pairs"])
            if any(s["kind"] == "online" for s in leaves) and len(leaves) > 1:
                self.rep.add("E0301", "online(...) pairs cannot be mixed with other pair sources",
                             spans.get(("pairs",), node.name_span))
                ok = False
            if config["reference"]["kind"] == "refresh" and not any(s["kind"] == "online" for s in leaves):
                self.rep.add("E0301", "reference = refresh(...) needs online(...) pairs",
                             spans.get(("reference",), node.name_span), hint="use the default `frozen`")
                ok = False
        if config.get("nll_real", 0) > 0 and config.get("real") is None:
            self.rep.add("E0301", "nll_real needs `real` videos", spans.get(("nll_real",), node.name_span),
                         hint="add `real = <a videos dataset>`")
            ok = False
        if kind == "grpo" and not grpo_composition_rules(config, spans, node.name_span, self.rep):
            ok = False
        if not validation_rules(config, spans, node.name_span, self.rep):
            ok = False
        for field in ("pairs", "labels", "data"):
            if not pair_source_rules(kind, config, _pair_leaves(config.get(field)), spans.get((field,), node.name_span),
                                     self.rep):
                ok = False
        if kind != "dpo":
            for src in _pair_leaves(config.get("data")) + _pair_leaves(config.get("labels")):
                if src.get("kind") == "online":
                    self.rep.add("E0301", "online(...) pairs are only for dpo stages", node.name_span)
                    ok = False
        return ok

    # ---- iterate
    def _iterate(self, node: ast.Iterate, env: Env) -> IterateValue | None:
        ev = Evaluator(self, env, {})
        current: dict[str, Any] = {}
        try:
            for var in node.vars:
                if var.name in current:
                    self.rep.add("E0211", f"`{node.name}` declares the variable `{var.name}` twice", var.name_span)
                    return None
                current[var.name] = ev.value(var.init)
                if isinstance(current[var.name], Word):
                    ev._unknown(current[var.name], var.init.span)
            rounds = ev.value(node.rounds)
        except EvalError:
            return None
        if not isinstance(rounds, int) or isinstance(rounds, bool) or not 1 <= rounds <= MAX_ROUNDS:
            self.rep.add("E0203", f"rounds must be a whole number from 1 to {MAX_ROUNDS}, got {describe(rounds)}",
                         node.rounds.span)
            return None
        variables = ", ".join(f"`{v.name}`" for v in node.vars)
        per_round: list[dict[str, Any]] = []
        for k in range(1, rounds + 1):
            local: dict[str, Any] = dict(current)
            round_env = env.child(local)
            names: dict[str, Any] = {}
            nexts: dict[str, Any] = {}
            for item in node.items:
                if isinstance(item, ast.Next):
                    if item.name not in current:
                        if k == 1:
                            self.rep.add("E0111", f"`next {item.name}`: `{node.name}` has no variable "
                                         f"`{item.name}`", item.name_span, hint=f"its variables: {variables}")
                        continue
                    try:
                        nexts[item.name] = Evaluator(self, round_env, {}).value(item.value)
                    except EvalError:
                        return None
                    continue
                if isinstance(item, ast.Let):
                    local[item.name] = Evaluator(self, round_env, {}).value(item.value)
                    continue
                if item.kind != "stage" and k == 1:
                    self.rep.add("E0205", "an iterate block declares stages (and `let`/`next`), not a "
                                 f"{item.kind}", item.span)
                    continue
                if item.kind != "stage":
                    continue
                value = self._stage(item, round_env, prefix=f"{node.name}.r{k}.")
                if value is None:
                    return None
                local[item.name] = value
                names[item.name] = value
            per_round.append(names)
            current.update(nexts)
        return IterateValue(node.name, per_round, current, node.span)

    # ---- attributes and rewards
    def attribute(self, obj: Any, e: ast.Attr, ev: Evaluator) -> Any:
        name = e.name
        if isinstance(obj, ModuleValue):
            sym = obj.scope.symbols.get(name)
            if sym is None or isinstance(sym.node, (ast.UseModule, ast.UseFile)):
                public = [n for n, s in obj.scope.symbols.items() if not isinstance(s.node, (ast.UseModule, ast.UseFile))]
                guess = did_you_mean(name, public)
                ev.error("E0103", f"module `{obj.name}` has no `{name}`", e.name_span,
                         hint=f"did you mean `{guess}`?" if guess else None)
            sym.used = True
            value = self.force(sym)
            if value is None or value is FAILED:
                raise EvalError()
            if isinstance(value, DeclValue):
                return DeclValue(value.decl_kind, f"{obj.name}.{name}", value.spec, value.span)
            return value
        if isinstance(obj, (DeclValue, StageValue)) and self._heads(obj) is not None:
            heads = self._heads(obj)
            if name == "overall" or name in heads:
                ref = self.reward_ref(obj)
                if not heads and name != "overall":
                    ev.error("E0212", f"`{ref['name']}` has a single score; it has no head `{name}`", e.name_span)
                ref["head"] = name
                return ref
            guess = did_you_mean(name, heads + ["overall"])
            ev.error("E0212", f"`{self.reward_ref(obj)['name']}` has no head `{name}`", e.name_span,
                     hint=f"did you mean `{guess}`?" if guess else f"heads: {', '.join(heads + ['overall'])}")
        if isinstance(obj, IterateValue):
            if name in obj.finals:
                return obj.finals[name]
            if obj.rounds and name in obj.rounds[-1]:
                return obj.rounds[-1][name]
            options = list(obj.finals) + list(obj.rounds[-1] if obj.rounds else [])
            guess = did_you_mean(name, options)
            ev.error("E0103", f"iterate `{obj.name}` has no `{name}`", e.name_span,
                     hint=f"did you mean `{guess}`?" if guess else f"it has: {', '.join(options)}")
        if isinstance(obj, RoundValue):
            if name in obj.names:
                return obj.names[name]
            guess = did_you_mean(name, list(obj.names))
            ev.error("E0103", f"round {obj.index} of `{obj.iterate.name}` has no stage `{name}`", e.name_span,
                     hint=f"did you mean `{guess}`?" if guess else None)
        if isinstance(obj, Word):
            ev._unknown(obj, e.obj.span)
        if isinstance(obj, dict) and obj.get("ref") == "reward":
            ev.error("E0212", f"`{obj['name']}.{obj['head']}` is already one head", e.name_span)
        ev.error("E0103", f"{describe(obj)} has no attribute `{name}`", e.name_span)

    def _heads(self, obj) -> list[str] | None:
        if isinstance(obj, DeclValue) and obj.decl_kind == "reward":
            return obj.heads()
        if isinstance(obj, StageValue) and obj.produces == "reward_model":
            return obj.heads
        return None

    def reward_ref(self, v: Any) -> dict | None:
        if isinstance(v, dict) and v.get("ref") == "reward":
            return v
        if isinstance(v, DeclValue) and v.decl_kind == "reward":
            return {"ref": "reward", "name": v.name, "head": None, "heads": v.heads(), "spec": v.spec,
                    "stage": None}
        if isinstance(v, StageValue) and v.produces == "reward_model":
            return {"ref": "reward", "name": v.id, "head": None, "heads": list(v.heads), "spec": None,
                    "stage": v.id}
        return None

    # ---- warnings
    def _warn_unused(self, main: ModuleScope) -> None:
        # A file without stages is a library (stdlib, shared definitions): its names exist to be used
        # elsewhere, so only its imports are checked.
        is_library = not any(isinstance(s.node, (ast.Iterate,)) or
                             (isinstance(s.node, ast.Decl) and s.node.kind == "stage") for s in main.symbols.values())
        for sym in main.symbols.values():
            node = sym.node
            if sym.used:
                continue
            if isinstance(node, (ast.UseModule, ast.UseFile)):
                self.rep.add("W0103", f"`{sym.name}` is imported but never used", _item_span(node),
                             hint="remove the `use` line")
            elif not is_library and (isinstance(node, ast.Decl) and node.kind != "stage" or isinstance(node, ast.Let)):
                self.rep.add("W0101", f"`{sym.name}` is declared but never used", node.name_span)
        in_stdlib = main.source.path is not None and main.source.path.parent == STDLIB_DIR
        prelude = self.prelude.symbols if self.prelude is not None and not in_stdlib else {}
        for sym in main.symbols.values():
            if isinstance(sym.node, (ast.Decl, ast.Let, ast.Param)) and sym.name in prelude:
                self.rep.add("W0102", f"`{sym.name}` shadows the built-in metric `{sym.name}`", sym.node.name_span,
                             notes=[Note("built-in declared here", _item_span(prelude[sym.name].node))])


def _is_reward_expression(expr: ast.Expr) -> bool:
    """Arithmetic over rewards, or a `joint(...)` call: not a constructor call or a name."""
    if isinstance(expr, (ast.Binary, ast.Unary)):
        return True
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.name == "joint"


def _pair_leaves(value) -> list[dict]:
    if not isinstance(value, dict):
        return []
    if value.get("kind") == "mix":
        return [s for s in value.get("sources", []) if isinstance(s, dict)]
    return [value]


def _other_stage_fields(schema) -> dict[str, list[str]]:
    return {k: list(s.model_fields) for k, s in STAGES.items() if s is not schema}


def _item_name(item) -> str | None:
    if isinstance(item, ast.UseModule):
        return item.alias or item.module[-1]
    return getattr(item, "alias", None) if isinstance(item, ast.UseFile) else getattr(item, "name", None)


def _item_span(item) -> Span:
    return getattr(item, "name_span", None) or item.span


def _kind(v) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str) and not isinstance(v, Word):
        return "a string"
    return describe(v)


def _plain(v):
    if isinstance(v, (bool, int, float)) or (isinstance(v, str) and not isinstance(v, Word)):
        return v
    return str(v)


def _shift(expr, span: Span):
    """Re-anchor an expression parsed from a --set value onto the command line's span."""
    import dataclasses

    def walk(node):
        if isinstance(node, tuple):
            return tuple(walk(n) for n in node)
        if not dataclasses.is_dataclass(node) or isinstance(node, Span):
            return node
        changes = {f.name: (span if isinstance(getattr(node, f.name), Span) else walk(getattr(node, f.name)))
                   for f in dataclasses.fields(node)}
        return type(node)(**changes)
    return walk(expr)


def _constants_bottom_up(main: ModuleScope) -> list[str]:
    """The recipe's `let`/`param` constants whose dependencies are only such constants, without cycles,
    each after the constants it uses. Forcing them in this order first keeps lazy evaluation shallow: a
    chain declared in reverse (`let a = b`, `let b = c`, ...) otherwise recursed once per link, and past
    a few hundred links the recursion limit reported false cycles and false unused warnings. Anything
    that may declare stages is left to the lazy pass, whose order the plan's job order follows."""
    constants = {n for n, s in main.symbols.items() if isinstance(s.node, (ast.Let, ast.Param))}
    deps = {n: [d for d in _names_in(main.symbols[n].node.value) if d in main.symbols] for n in constants}
    ready: dict[str, bool] = {}
    order: list[str] = []
    for root in sorted(constants, key=lambda n: (main.symbols[n].node.span.line, main.symbols[n].node.span.col)):
        if root in ready:
            continue
        stack, on_path, tainted = [(root, iter(deps[root]))], {root}, set()
        while stack:
            name, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                on_path.discard(name)
                ready[name] = name not in tainted and all(ready.get(d, False) for d in deps[name])
                if ready[name]:
                    order.append(name)
            elif child not in constants or child in on_path:
                tainted.add(name)  # a declaration that may make stages, or a cycle: leave it to force()
            elif child not in ready:
                stack.append((child, iter(deps[child])))
                on_path.add(child)
    return order


def _names_in(expr) -> list[str]:
    """Every name an expression mentions (an over-approximation of what it refers to), without recursion."""
    names, todo = [], [expr]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Name):
            names.append(node.name)
        elif isinstance(node, (tuple, list)):
            todo.extend(node)
        elif isinstance(node, ast.Node):
            todo.extend(getattr(node, f) for f in node.__dataclass_fields__ if f != "span")
    return names
