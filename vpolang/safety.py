"""The grammars of every string that reaches a scheduler directive, a shell or a file name.

Recipes and plans are untrusted: a newline in a Slurm partition ends its `#SBATCH` line and the next
line runs as shell; `../` in a job id puts its folder outside the run directory. The compiler checks
recipe strings against these grammars (diagnostics E0220-E0222), the plan model checks a plan.json's
ids and placements against the same ones, and the runtime checks again before it submits a job or
derives a path. One module, no third-party imports, so that the compiler, the plan and the runtime
share it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_LARK = Path(__file__).resolve().parent / "grammar" / "vpo.lark"


def _grammar_name() -> str:
    """The language's NAME terminal, read from the grammar itself so the two cannot drift apart."""
    for line in _LARK.read_text().splitlines():
        found = re.fullmatch(r"NAME:\s*/(.+)/\s*", line)
        if found:
            return found.group(1)
    raise RuntimeError(f"{_LARK} has no NAME terminal")


NAME = _grammar_name()  # [A-Za-z_][A-Za-z0-9_]*
DOTTED = rf"{NAME}(?:\.{NAME})*"  # job and stage ids: `pref.pairs.on_policy_2.generate`
SLOT = rf"(?:{NAME}:)?{DOTTED}"  # input slots: `policy:sft`, `pairs.on_policy`, `videos`
HEX_HASH = r"(?:[0-9a-f]{64})?"  # a job's content hash (empty before lowering fills it in)

# Slurm names (partitions, accounts, QOS, GPU types): what sinfo and sacctmgr print; no whitespace,
# quotes or shell characters. A partition may be a comma-separated list: `--partition=a100,h100`.
SLURM_NAME = r"[A-Za-z0-9_.\-]+"
SLURM_NAMES = rf"{SLURM_NAME}(?:,{SLURM_NAME})*"
SBATCH_OPTION = r"[a-z][a-z0-9\-]*"  # sbatch long options: `qos`, `mail-type`, `gres`
# An sbatch value: printable, and none of whitespace, quotes, `#`, `;`, `$`, backtick, `\`, `&|<>()`.
SBATCH_VALUE = r"[A-Za-z0-9_.,:=+/@%\-]+"
# Options whose values need more: node features combine with `&`, `|`, brackets and counts.
SBATCH_VALUE_FOR = {"constraint": r"[A-Za-z0-9_.,:=+/@%\-&|\[\]()*!]+",
                    "cluster-constraint": r"[A-Za-z0-9_.,:=+/@%\-&|\[\]()*!]+"}
# Options vpo sets itself from the plan (or submitit does): a second copy would silently win or clash.
RESERVED_OPTIONS = {"job-name": "the stage id", "partition": "`partition`", "account": "`account`",
                    "nodes": "the stage's `nodes`", "ntasks-per-node": "`gpus_per_node`",
                    "gpus-per-node": "`gpus_per_node`", "cpus-per-task": "`cpus_per_gpu`", "mem": "`mem_per_gpu`",
                    "time": "`time_limit`", "dependency": "the plan's dependencies", "output": "the run directory",
                    "error": "the run directory", "open-mode": "submitit", "signal": "vpo's preemption signal",
                    "array": "submitit", "kill-on-invalid-dep": "vpo", "wckey": "submitit"}
MAX_LEN = 256


class UnsafeText(ValueError):
    """A string that would break out of the directive, command or folder it is meant for."""


class PathEscape(ValueError):
    """A path derived from plan data that lies outside the folder it must stay in."""


def shown(text: str) -> str:
    """The text as a quoted, escaped literal: a hostile value must not print a raw newline either."""
    text = str(text)
    return ascii(text if len(text) <= 60 else text[:57] + "...")


def _matches(pattern: str, text: object) -> bool:
    return isinstance(text, str) and len(text) <= MAX_LEN and re.fullmatch(pattern, text) is not None


# ---- recipe and placement strings (each returns what is wrong, or None) ---------------------------
def slurm_name_problem(text: str, field: str, many: bool = False) -> str | None:
    if _matches(SLURM_NAMES if many else SLURM_NAME, text):
        return None
    what = "a comma-separated list of Slurm names" if many else "a Slurm name"
    return f"`{field}` must be {what} (letters, digits, `_`, `.`, `-`), got {shown(text)}"


def sbatch_option_problem(key: str) -> str | None:
    if not _matches(SBATCH_OPTION, key):
        return f"`extra` key {shown(key)} is not an sbatch long option name (lower-case letters, digits, `-`)"
    if key in RESERVED_OPTIONS:
        return f"`extra` cannot set `--{key}`: vpo sets it from {RESERVED_OPTIONS[key]}"
    return None


def sbatch_value_problem(key: str, value: str) -> str | None:
    if _matches(SBATCH_VALUE_FOR.get(key, SBATCH_VALUE), value):
        return None
    return (f"`extra` value of `--{key}` has characters sbatch directives may not hold, got {shown(value)}"
            f"{'' if isinstance(value, str) else ' (not a string)'}")


def extra_problems(extra: dict) -> list[str]:
    return [p for k, v in extra.items() for p in (sbatch_option_problem(k), sbatch_value_problem(k, v)) if p]


def path_text_problem(text: str) -> str | None:
    """Paths may hold any character a file name can, except control characters (NUL ends a C string;
    a newline ends a directive or a log line)."""
    if isinstance(text, str) and not any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    return f"a path cannot hold control characters (NUL, newline, tab...), got {shown(text)}"


URL_MAX_LEN = 2048
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def url_problem(text: str) -> str | None:
    """Why `text` is not an http(s) URL a served reward may call: scheme http or https, a host, a valid
    port, no credentials (they belong in an environment variable, `api_key_env`), no whitespace or
    control characters, no fragment. The URL is only ever handed to an HTTP client, never to a shell."""
    from urllib.parse import urlsplit

    if len(text) > URL_MAX_LEN:
        return f"a URL is at most {URL_MAX_LEN} characters, got {len(text)}"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        return f"a URL cannot hold whitespace or control characters, got {shown(text)}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        return f"not a URL ({e}): {shown(text)}"
    if parts.scheme not in ("http", "https"):
        return f"a served reward's URL starts with http:// or https://, got {shown(text)}"
    if not parts.hostname:
        return f"the URL names no host: {shown(text)}"
    if parts.username is not None or parts.password is not None:
        return "a URL cannot carry credentials; put the key in an environment variable named by `api_key_env`"
    if parts.fragment:
        return f"a URL's `#fragment` is never sent to the server; remove it: {shown(text)}"
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range"
    return None


PY_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
ENTRY_POINT_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"


def plugin_entry_problem(text: str) -> str | None:
    """Why `text` is neither `module.path:Class` nor an entry-point name (of the `vpo.rewards` group).
    Syntax only: the compiler never imports user code."""
    if len(text) > MAX_LEN:
        return f"a plugin entry is at most {MAX_LEN} characters"
    if ":" in text:
        module, _, attr = text.partition(":")
        if re.fullmatch(PY_DOTTED, module) and re.fullmatch(PY_DOTTED, attr):
            return None
        return f"`module:Class` takes a dotted module and a dotted attribute name, got {shown(text)}"
    if re.fullmatch(ENTRY_POINT_NAME, text):
        return None
    return f"a plugin is `module.path:Class` or the name of a `vpo.rewards` entry point, got {shown(text)}"


def placement_problems(placement) -> list[str]:
    """Everything wrong with a plan placement's strings (the Slurm executor refuses any)."""
    problems = [slurm_name_problem(placement.partition, "partition", many=True) if placement.partition else None,
                slurm_name_problem(placement.account, "account") if placement.account else None,
                slurm_name_problem(placement.gpu, "gpu") if placement.gpu else None,
                identifier_problem(placement.cluster, "cluster", DOTTED) if placement.cluster else None]
    extra = placement.slurm_extra if isinstance(placement.slurm_extra, dict) else {"": placement.slurm_extra}
    return [p for p in problems if p] + extra_problems(extra)


def check_placement(placement, job_id: str) -> None:
    problems = placement_problems(placement)
    if problems:
        raise UnsafeText(f"job {shown(job_id)}: refusing to submit: {problems[0]}")


# ---- plan ids and names ----------------------------------------------------------------------------
GRAMMARS = {NAME: "a name ([A-Za-z_][A-Za-z0-9_]*)", DOTTED: "a dotted name such as `pref.pairs.generate`",
            SLOT: "an input slot such as `policy:sft`", HEX_HASH: "64 lower-case hex digits"}


def identifier_problem(text: str, what: str, grammar: str = NAME) -> str | None:
    if _matches(grammar, text):
        return None
    return f"{what} {shown(text)} is not {GRAMMARS[grammar]}"


def recipe_name(stem: str) -> str:
    """A recipe file's stem as a name (it names the default run directory): `ipo-v2` -> `ipo_v2`."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_")[:64] or "recipe"
    return name if re.fullmatch(NAME, name) else "_" + name


# ---- paths -----------------------------------------------------------------------------------------
def contained(root: Path | str, path: Path | str) -> Path:
    """`path` itself, after checking that it resolves (symlinks followed) inside `root`."""
    text = os.fspath(path)
    if "\0" in text:
        raise PathEscape(f"path {shown(text)} holds a NUL byte")
    real_root, real = Path(root).resolve(), Path(path).resolve()
    if real != real_root and real_root not in real.parents:
        raise PathEscape(f"{shown(text)} lies outside {real_root}; refusing to read or write it")
    return Path(path)
