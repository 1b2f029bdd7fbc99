"""The syntax tree: frozen dataclasses, every node carrying the Span it was parsed from."""
from __future__ import annotations

from dataclasses import dataclass

from .source import Span


@dataclass(frozen=True)
class Node:
    span: Span


# ---- expressions -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Number(Node):
    value: float | int
    text: str


@dataclass(frozen=True)
class Quantity(Node):
    value: float | int
    unit: str
    text: str


@dataclass(frozen=True)
class String(Node):
    value: str
    text: str


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Attr(Node):
    obj: "Expr"
    name: str
    name_span: Span


@dataclass(frozen=True)
class Index(Node):
    obj: "Expr"
    index: "Expr"


@dataclass(frozen=True)
class Arg(Node):
    name: str | None  # None for a positional argument
    value: "Expr"


@dataclass(frozen=True)
class Call(Node):
    func: "Expr"
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class ListExpr(Node):
    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Binary(Node):
    op: str  # + - * / and or
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Compare(Node):
    op: str  # >= <= == != > <
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Unary(Node):
    op: str  # - not
    operand: "Expr"


Expr = Number | Quantity | String | Bool | Name | Attr | Index | Call | ListExpr | Binary | Compare | Unary


# ---- declarations ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field(Node):
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True)
class Modifier(Node):
    name: str
    name_span: Span
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Body(Node):
    fields: tuple[Field, ...]
    modifiers: tuple[Modifier, ...]


@dataclass(frozen=True)
class Decl(Node):
    kind: str  # model | dataset | reward | cluster | stage
    name: str
    name_span: Span
    value: Expr
    on: Name | None
    body: Body | None


@dataclass(frozen=True)
class Let(Node):
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True)
class Param(Node):
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True)
class UseModule(Node):
    module: tuple[str, ...]
    alias: str | None
    alias_span: Span | None


@dataclass(frozen=True)
class UseFile(Node):
    path: str
    path_span: Span
    alias: str
    alias_span: Span
    sha256: str | None


@dataclass(frozen=True)
class Next(Node):
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True)
class IterVar(Node):
    """One loop variable of an iterate block and its first round's value: `policy = base`."""
    name: str
    name_span: Span
    init: Expr


@dataclass(frozen=True)
class Iterate(Node):
    name: str
    name_span: Span
    vars: tuple[IterVar, ...]  # `iterate ipo(policy = base, beta = 0.1)`: each changed by its `next`
    rounds: Expr
    items: tuple[Decl | Let | Next, ...]


@dataclass(frozen=True)
class Header(Node):
    version: str


Item = UseModule | UseFile | Let | Param | Decl | Iterate


@dataclass(frozen=True)
class Module(Node):
    header: Header | None
    items: tuple[Item, ...]
    comments: tuple[tuple[int, int, str], ...]  # (line, col, text) for the formatter
