"""Diagnostics: structured records (asserted by tests), collected per compilation, rendered on demand.

Every code is listed in CODES with its default severity and a one-line summary, and in HINTS with the
hint shown when the diagnostic has no more specific one; spec/language.md's diagnostics catalogue is
generated from these tables and every code has a conformance case.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

from .source import SourceFile, Span

CODES: dict[str, tuple[str, str]] = {
    # E00xx input and syntax
    "E0001": ("error", "the input cannot be read as UTF-8 text"),
    "E0002": ("error", "syntax error: unexpected token"),
    "E0003": ("error", "syntax error: unexpected character"),
    "E0004": ("error", "syntax error: unexpected end of input"),
    "E0005": ("error", "unknown unit on a number"),
    "E0006": ("error", "the input is too large or too deeply nested"),
    "E0007": ("error", "missing or unsupported `vpo` version header"),
    "E0008": ("error", "invalid string escape"),
    "E0009": ("error", "a number or string literal is too long or out of range"),
    "E0010": ("error", "too many diagnostics: the rest are not shown"),
    # E01xx names and scopes
    "E0101": ("error", "unknown name"),
    "E0102": ("error", "duplicate declaration"),
    "E0103": ("error", "unknown attribute"),
    "E0104": ("error", "unknown standard-library module"),
    "E0105": ("error", "imported file not found or outside the recipe's directory tree"),
    "E0106": ("error", "import cycle between files"),
    "E0107": ("error", "dependency cycle between declarations"),
    "E0108": ("error", "cannot index this value"),
    "E0109": ("error", "round index out of range"),
    "E0110": ("error", "imported file's sha256 does not match its pin"),
    "E0111": ("error", "`next` names no iterate variable"),
    "E0112": ("error", "unknown parameter in --set"),
    "E0113": ("error", "invalid --set value"),
    # E02xx values, types and units
    "E0201": ("error", "unknown field"),
    "E0202": ("error", "missing required field"),
    "E0203": ("error", "value out of range"),
    "E0204": ("error", "wrong type of value"),
    "E0205": ("error", "unknown kind of declaration value"),
    "E0206": ("error", "wrong kind of reference"),
    "E0207": ("error", "not a scalar reward"),
    "E0208": ("error", "wrong unit"),
    "E0209": ("error", "invalid arithmetic"),
    "E0210": ("error", "unknown modifier or modifier not allowed on this stage kind"),
    "E0211": ("error", "too many or duplicate arguments"),
    "E0212": ("error", "unknown reward head"),
    "E0213": ("error", "division by zero"),
    "E0214": ("error", "unknown cluster or cluster used incorrectly"),
    "E0220": ("error", "a Slurm partition, account or GPU name holds characters it may not"),
    "E0221": ("error", "an `extra` sbatch option or value that vpo does not pass to Slurm"),
    "E0222": ("error", "a path holds control characters"),
    "E0223": ("error", "a served reward's URL or key variable that vpo does not call"),
    "E0224": ("error", "a plugin reward entry that is not `module:Class` or an entry-point name"),
    # E03xx cross-field and whole-recipe rules
    "E0301": ("error", "invalid combination of fields"),
    "E0302": ("error", "the job does not fit in GPU memory"),
    "E0303": ("error", "impossible batch arithmetic"),
    "E0304": ("error", "budget exceeded"),
    # E031x preflight: what a trainer or loader would refuse when the job starts (vpolang/preflight/)
    "E0310": ("error", "model family without a runtime adapter"),
    "E0311": ("error", "`compile` with ZeRO-3"),
    "E0312": ("error", "`ema` with ZeRO-3"),
    "E0313": ("error", "online pairs on several processes"),
    "E0314": ("error", "`mixed_resolution` with online pairs"),
    "E0316": ("error", "a pairwise judge used as a pointwise score"),
    "E0317": ("error", "shapes-world videos at a non-square resolution"),
    "E0318": ("error", "frames the model family cannot encode"),
    "E0319": ("error", "resolution the model family cannot encode and patch"),
    "E0320": ("error", "model folder of another family than declared"),
    "E0321": ("error", "model folder whose sizes differ from the declaration"),
    "E0322": ("error", "inconsistent Wan 2.2 two-expert folder"),
    "E0323": ("error", "more nodes than the cluster's `max_nodes`"),
    "E0324": ("error", "reward guidance with a reward that has no gradient"),
    # E0315 retired: LoRA with `reference = refresh(...)` runs (the reference is an adapter snapshot)
    "E0330": ("error", "`nodes` on a stage whose trainer runs in one process"),
    "E0331": ("error", "a refreshed LoRA reference with ZeRO-3"),
    "E0332": ("error", "`sequence_parallel` the job's GPUs, the model's heads or its family cannot split, "
                       "or beside `compile`"),
    # E04xx the user's data and model folders, checked where they are on this machine (data preflight)
    "E0401": ("error", "no videos match a dataset's glob"),
    "E0402": ("error", "a dataset file is not a video"),
    "E0403": ("error", "a line of a data file does not parse"),
    "E0404": ("error", "a data file does not exist"),
    "E0405": ("error", "a data file names a video that does not exist"),
    "E0406": ("error", "a data file holds no items"),
    "E0407": ("error", "a model path is not a diffusers folder"),
    "E0408": ("error", "a video has no caption"),
    "E0340": ("error", "self_paced phases differ from the joint reward's rewards"),
    "E0342": ("error", "on_policy(...) inside rwr with judging fields the stage does not use"),
    "E0343": ("error", "a pairwise judge asked to score candidates"),
    "E0344": ("error", "a GRPO window that conflicts with the stage's steps"),
    "E0345": ("error", "a KL option without a KL term"),
    "E0346": ("error", "win-rate rewards with BPGO's per-prompt prior"),
    "E0347": ("error", "a CPS noise level outside (0, 1]"),
    "E0348": ("error", "a GRPO option that needs trajectory log-probs beside DiffusionNFT, or the reverse"),
    "E0350": ("error", "validate's monitor is not one of its metrics"),
    "E0351": ("error", "keep_best together with ema"),
    "E0352": ("error", "early stopping whose patience outlasts the stage's validations"),
    # W01xx warnings
    "W0101": ("warning", "unused declaration"),
    "W0102": ("warning", "declaration shadows an imported or built-in name"),
    "W0103": ("warning", "unused import"),
    "W0105": ("warning", "GRPO without a KL term or a gate"),
    "W0106": ("warning", "DPO beta outside the usual range for the model's prediction type"),
    "W0107": ("warning", "evaluation against nothing"),
    # W03xx preflight and plan warnings
    # W0301 retired: every vision-language family loads (VILA and LLaVA through transformers' Llava classes)
    "W0302": ("warning", "the plan assumed a number it cannot count (a dataset size, a backbone)"),
    "W0303": ("warning", "planned memory leaves under 10% headroom"),
    # W0304 retired: lowering places one-process stages (evaluate) on one GPU; `nodes > 1` is E0330
    "W0305": ("warning", "weights a job must load have no `path`"),
}


# The hint of a diagnostic that was reported without a more specific one: every code says what to do.
HINTS: dict[str, str] = {
    "E0001": "save the recipe as UTF-8 text (no NUL bytes)",
    "E0002": "check the token at the caret: a missing `=`, `,` or bracket before it is the usual cause",
    "E0003": "this character cannot start any token; names, numbers and strings are ASCII outside strings",
    "E0004": "a bracket, block or expression is not finished",
    "E0005": "units: s, sec, min, h, d, MiB, GiB, TiB, MB, GB, TB, p, k, K, M, B",
    "E0006": "split the recipe or the expression (with `let`) into smaller pieces",
    "E0007": "start the file with `vpo 0.1`",
    "E0008": 'escapes: \\\\ \\" \\n \\t \\r \\0 \\uXXXX',
    "E0009": "numbers are at most 64 characters and finite; strings at most 65,536 characters",
    "E0010": "fix the errors shown and check again; the next one is at the span given",
    "E0101": "declare the name, import it with `use`, or fix its spelling",
    "E0102": "rename one of the two declarations",
    "E0103": "`vpo explain <kind>` lists the fields of a kind",
    "E0104": "standard-library modules are `std.<name>`; see stdlib/",
    "E0105": "imports are files inside the recipe's directory tree",
    "E0106": "move what both files need into a third file that imports neither",
    "E0107": "a declaration cannot refer to itself, directly or through others",
    "E0108": "only iterate blocks (`ipo[1]`) and lists can be indexed",
    "E0109": "rounds are numbered from 0 to `rounds - 1`",
    "E0110": "the shared file changed: review it, then update the pin",
    "E0111": "`next` assigns a variable declared in the iterate's parentheses",
    "E0112": "`--set` overrides a `param` the recipe declares",
    "E0113": "`--set name=value` takes one expression of the param's kind",
    "E0201": "`vpo explain <kind>` lists the fields of a kind",
    "E0202": "add the field; `vpo explain <kind>` shows what it takes",
    "E0203": "`vpo explain <kind>.<field>` shows the allowed range",
    "E0204": "`vpo explain <kind>.<field>` shows the type the field takes",
    "E0205": "a declaration's value is a constructor call or another declaration of the same kind",
    "E0206": "the field takes a declaration of another kind (a model, dataset, reward or stage)",
    "E0207": "combine the reward's heads into one number, e.g. `r.a + 0.5 * r.b`",
    "E0208": "write the value with a unit of the right kind, e.g. `48h`, `80GiB`, `480p`",
    "E0209": "quantities add to quantities of the same kind and scale by numbers",
    "E0210": "`vpo explain <stage kind>` lists the modifiers it takes",
    "E0211": "give each field or argument once",
    "E0212": "`vpo explain <reward>` lists its heads",
    "E0213": "divide by a non-zero number",
    "E0214": "`on` names a `cluster` declaration",
    "E0301": "`vpo explain <stage kind>` describes the fields that go together",
    "E0302": "the hint lists changes that fit: sequence parallelism, checkpointing or a smaller clip shrink "
             "one video's activations; ZeRO-3, more nodes and LoRA shrink only the weights' states",
    "E0303": "make the batch a multiple of the GPUs (and of the micro-batch)",
    "E0304": "raise --budget or make the plan cheaper (fewer steps, nodes or stages)",
    "W0101": "remove the declaration or use it",
    "W0102": "rename the declaration to keep the imported or built-in name reachable",
    "W0103": "remove the `use` or use the module",
    "W0105": "add `kl = ...` or a reward gate to keep the policy near its start",
    "W0106": "beta depends on the model's prediction type: see `vpo explain dpo.beta`",
    "W0107": "give `against = [...]` baselines to compare with",
    "E0220": "use only letters, digits, `_`, `.` and `-` (a partition list separates names with commas)",
    "E0221": "name an sbatch long option vpo does not set itself, with a value of letters, digits and `_.,:=+/@%-`",
    "E0222": "remove the control character (newline, tab, NUL) from the path",
    "E0223": "an http:// or https:// URL with a host and no credentials; a key goes in the variable `api_key_env` names",
    "E0224": "write `module.path:Class`, or the name an installed package registers under `vpo.rewards`",
    "E0310": "use a family with a runtime adapter (wan, wan22, cogvideox, or the shapes world)",
    "E0311": "use zero_stage <= 2, or remove `compile`",
    "E0312": "use zero_stage <= 2, or remove `ema`",
    "E0313": "place the online DPO stage on one GPU (nodes = 1, gpus_per_node = 1)",
    "E0314": "drop `mixed_resolution`, or use offline pairs",
    "E0316": "use it as evaluate's `gsb` or as an on_policy judge, or declare a pointwise judge",
    "E0317": "give the shapes world a square resolution, e.g. [16, 16]",
    "E0318": "choose a frame count the family's VAE encodes (Wan: 1 + 4k)",
    "E0319": "choose a height and width divisible by the VAE stride times the patch size",
    "E0320": "declare the folder's own family, or point `path` at a folder of the declared family",
    "E0321": "remove the sizes from the declaration (they are read from the folder) or fix them",
    "E0322": "a Wan 2.2 folder needs transformer_2/ and a boundary_ratio in model_index.json",
    "E0323": "lower `nodes` to the cluster's `max_nodes`, or raise the limit",
    "E0324": "guide with a differentiable reward (one computed from pixels by torch)",
    "E0330": "remove `nodes`: the job is placed on one GPU of its cluster",
    "E0331": "use zero_stage <= 2 with a refreshed LoRA reference, or train the full model",
    "E0332": "use a sequence_parallel that divides both the GPUs of the job and the model's attention heads",
    "E0340": "list the joint's own rewards as the self-paced phases",
    "E0342": "leave judges, pick, margin, swap_check and labels unset in an rwr source: its reward weighs samples",
    "E0343": "score candidates with a pointwise judge; a pairwise one compares pairs",
    "E0344": "remove `train_fraction` (a window trains all its steps) or make the window fit the sampling steps",
    "E0345": "set `kl` above 0, or remove `kl_space`",
    "E0346": "drop `with bpgo` or use `reward_as = score`: a group's win rates always average 0.5",
    "E0347": "give cps a noise_level eta in (0, 1] (std = s' sin(eta pi / 2))",
    "E0348": "objective = nft trains on clean samples without log-probs or guidance: remove the ratio, window and "
             "map options (or use objective = grpo)",
    "E0350": "add the monitored reward to `metrics`, or leave `monitor` unset (the first metric)",
    "E0351": "drop `ema` (the best validated weights are the output) or `keep_best`",
    "E0352": "validate more often (lower `every`), lower `patience`, or train longer",
    "E0401": "check the glob against the files on this machine",
    "E0402": "replace the file with a video (mp4, webm, avi, gif) or a folder of frame images",
    "E0403": "fix the line named in the note (one JSON object per line, UTF-8)",
    "E0404": "create the file or correct the path (relative to the recipe's folder)",
    "E0405": "correct the video path in the data file (relative to that file)",
    "E0406": "add items to the file or point at another one",
    "E0407": "point `path` at a diffusers pipeline folder (model_index.json, transformer/config.json)",
    "E0408": "add a captions record or a .txt beside the video",
    "W0302": "make the data countable here (local files) or accept the assumed count in the estimate",
    "W0303": "lower the micro-batch, enable gradient checkpointing or use more GPUs for headroom",
    "W0305": "give the model a `path` to its local weights",
}


@dataclass(frozen=True)
class Note:
    message: str
    span: Span | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None
    hint: str | None = None
    notes: tuple[Note, ...] = ()

    def __post_init__(self):
        if self.hint is None and self.code in HINTS:
            object.__setattr__(self, "hint", HINTS[self.code])

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def to_dict(self) -> dict:
        return {"severity": self.severity, "code": self.code, "message": self.message,
                "span": self.span.to_dict() if self.span else None, "hint": self.hint,
                "notes": [{"message": n.message, "span": n.span.to_dict() if n.span else None}
                          for n in self.notes]}


class CompileError(Exception):
    """Raised when compilation cannot go on; carries every diagnostic collected so far."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("; ".join(d.message for d in diagnostics[:3]))
        self.diagnostics = diagnostics


@dataclass
class Reporter:
    """Collects diagnostics during a compilation (sqlglot's error-level policy: collect, raise once)."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    limit: int = 200
    dropped: int = 0  # past the limit: counted, not shown
    next_dropped: Diagnostic | None = None  # the first of them, named by the E0010 that ends the list

    def add(self, code: str, message: str, span: Span | None, hint: str | None = None,
            notes: Iterable[Note] = ()) -> None:
        if code not in CODES:
            raise KeyError(f"unregistered diagnostic code {code}")
        diag = Diagnostic(code, message, span, hint, tuple(notes))
        if diag in self.diagnostics or diag == self.next_dropped:
            return
        if len(self.diagnostics) < self.limit:
            self.diagnostics.append(diag)
            return
        self.dropped += 1
        self.next_dropped = self.next_dropped or diag

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def sorted(self) -> list[Diagnostic]:
        """By position, then one E0010 saying how many more there were and where the next one is."""
        def key(d: Diagnostic):
            s = d.span
            return (s.file, s.line, s.col, d.code) if s else ("", 0, 0, d.code)
        shown = sorted(self.diagnostics, key=key)
        if self.next_dropped is not None:
            more, nxt = self.dropped, self.next_dropped
            shown.append(Diagnostic("E0010", f"{more} more diagnostic{'s' * (more != 1)} not shown "
                                    f"(vpo shows the first {self.limit}); the next: {nxt.message}",
                                    nxt.span, HINTS["E0010"]))
        return shown


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate by edit distance (at most a third of the name's length), or None."""
    best, best_dist = None, None
    for cand in sorted(set(candidates)):
        dist = _edit_distance(name.lower(), cand.lower())
        if dist <= max(1, (len(name) + 1) // 3) and (best_dist is None or dist < best_dist):
            best, best_dist = cand, dist
    return best


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    if abs(len(a) - len(b)) > 3:
        return 99
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


# ---- rendering -------------------------------------------------------------------------------------
def render_text(diags: list[Diagnostic], sources: dict[str, SourceFile], color: bool = False) -> str:
    out = []
    for d in diags:
        out.append(_render_one(d, sources, color))
    n_err = sum(d.severity == "error" and d.code != "E0010" for d in diags)
    n_warn = sum(d.severity == "warning" for d in diags)
    if diags:
        out.append(f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}")
    return "\n".join(out)


def _paint(text: str, style: str, color: bool) -> str:
    codes = {"error": "1;31", "warning": "1;33", "note": "1;36", "hint": "1;32", "bold": "1", "caret": "1;31"}
    return f"\x1b[{codes[style]}m{text}\x1b[0m" if color else text


def _render_one(d: Diagnostic, sources: dict[str, SourceFile], color: bool) -> str:
    head = f"{_paint(d.severity + '[' + d.code + ']', d.severity, color)}: {_paint(d.message, 'bold', color)}"
    lines = [head]
    if d.span:
        lines.append(f"  --> {d.span}")
        lines.extend(_excerpt(d.span, sources, color))
    if d.hint:
        lines.append(f"  = {_paint('hint', 'hint', color)}: {d.hint}")
    for note in d.notes:
        where = f" ({note.span})" if note.span else ""
        lines.append(f"  = {_paint('note', 'note', color)}: {note.message}{where}")
        if note.span:
            lines.extend(_excerpt(note.span, sources, color))
    return "\n".join(lines) + "\n"


def _excerpt(span: Span, sources: dict[str, SourceFile], color: bool) -> list[str]:
    src = sources.get(span.file)
    if src is None:
        return []
    text = src.line_text(span.line)
    if len(text) > 200:  # keep huge generated lines readable
        start = max(0, span.col - 60)
        text, offset = text[start:start + 160], start
    else:
        offset = 0
    width = len(str(span.line))
    end_col = span.end_col if span.end_line == span.line else len(src.line_text(span.line)) + 1
    carets = max(1, min(end_col, offset + len(text) + 1) - span.col)
    pad = " " * max(0, span.col - 1 - offset)
    return [f" {' ' * width} |", f" {span.line} | {text.expandtabs(1)}",
            f" {' ' * width} | {pad}{_paint('^' * carets, 'caret', color)}"]


def render_json(diags: list[Diagnostic]) -> str:
    return json.dumps({"diagnostics": [d.to_dict() for d in diags]}, indent=2)


def render_github(diags: list[Diagnostic]) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic."""
    out = []
    for d in diags:
        level = "error" if d.severity == "error" else "warning"
        msg = d.message + (f" (hint: {d.hint})" if d.hint else "")
        msg = msg.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        if d.span:
            out.append(f"::{level} file={d.span.file},line={d.span.line},col={d.span.col},"
                       f"endLine={d.span.end_line},endColumn={d.span.end_col},title={d.code}::{msg}")
        else:
            out.append(f"::{level} title={d.code}::{msg}")
    return "\n".join(out)


def render_sarif(diags: list[Diagnostic]) -> str:
    """SARIF 2.1.0, for code-scanning uploads."""
    used = sorted({d.code for d in diags})
    rules = [{"id": c, "shortDescription": {"text": CODES[c][1]},
              "defaultConfiguration": {"level": "error" if CODES[c][0] == "error" else "warning"}}
             for c in used]
    results = []
    for d in diags:
        res = {"ruleId": d.code, "level": "error" if d.severity == "error" else "warning",
               "message": {"text": d.message + (f" (hint: {d.hint})" if d.hint else "")}}
        if d.span:
            res["locations"] = [{"physicalLocation": {
                "artifactLocation": {"uri": d.span.file},
                "region": {"startLine": d.span.line, "startColumn": d.span.col,
                           "endLine": d.span.end_line, "endColumn": d.span.end_col}}}]
        results.append(res)
    doc = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
           "runs": [{"tool": {"driver": {"name": "vpo", "informationUri": "https://example.invalid/vpo",
                                         "rules": rules}}, "results": results}]}
    return json.dumps(doc, indent=2)
