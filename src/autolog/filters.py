"""The run filter language: one grammar for the UI, the HTTP API's ``filter=`` and the CLI.

::

    expr    := term ( ("and" | "or") term )*       "and" binds tighter than "or"
    term    := "not" term | "(" expr ")" | compare
    compare := field op value | field "exists" | field "in" "(" value ("," value)* ")"
    field   := status | name | project | start_time | end_time | duration
               | params.KEY | metrics.KEY[:min|:max] | tags.KEY      (KEY, or `any key`)
    op      := = | != | < | <= | > | >= | ~              (~: case-insensitive substring)
    value   := number | "string" | 'string' | bare word

``parse`` turns text into a small tree of frozen dataclasses (:class:`Compare`, :class:`And`,
:class:`Or`, :class:`Not`); a :class:`FilterError` names the 1-based column where the text stops
making sense. Pure Python on purpose: the CLI filters local runs with :func:`matches` and the
server compiles the same tree to SQL (``autolog.server.search``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["OPERATORS", "And", "Compare", "Field", "FilterError", "Node", "Not", "Or", "SortKey",
           "matches", "parse", "parse_field", "parse_sort"]

FIELDS = ("status", "name", "project", "start_time", "end_time", "duration")
GROUPS = ("params", "metrics", "tags")
OPS = ("=", "!=", "<", "<=", ">", ">=", "~")
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED", "CRASHED")
_KEY_CHARS = re.compile(r"[A-Za-z0-9_./\-]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class FilterError(ValueError):
    """The expression does not parse; ``column`` is 1-based."""

    def __init__(self, message: str, column: int, expression: str):
        super().__init__(f"{message} at column {column}")
        self.message = f"{message} at column {column}"
        self.column = column
        self.expression = expression


@dataclass(frozen=True)
class Field:
    """``kind`` is a plain field name, or ``params``/``metrics``/``tags`` with ``key``;
    ``agg`` is ``last``, ``min`` or ``max`` for metrics."""

    kind: str
    key: str | None = None
    agg: str = "last"

    def __str__(self) -> str:
        if self.key is None:
            return self.kind
        key = self.key if _KEY_CHARS.fullmatch(self.key) else f"`{self.key}`"
        suffix = f":{self.agg}" if self.kind == "metrics" and self.agg != "last" else ""
        return f"{self.kind}.{key}{suffix}"


Value = float | str


@dataclass(frozen=True)
class Compare:
    """``field op value``; ``op`` is one of OPS, ``exists`` or ``in`` (``values`` then)."""

    field: Field
    op: str
    values: tuple[Value, ...] = ()
    #: per value: was it written as a number (not quoted)?
    numeric: tuple[bool, ...] = ()


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | And | Or | Not


@dataclass(frozen=True)
class SortKey:
    field: Field
    descending: bool


# -- tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # word, number, string, key, op, ( ) , end
    text: str
    column: int  # 1-based
    value: Any = None


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
            continue
        token, i = _token_at(text, i)
        out.append(token)
    out.append(_Token("end", "", len(text) + 1))
    return out


def _token_at(text: str, i: int) -> tuple[_Token, int]:
    char, column = text[i], i + 1
    if char in "(),":
        return _Token(char, char, column), i + 1
    if char in "!<>=~":
        op = text[i:i + 2] if text[i:i + 2] in ("!=", "<=", ">=") else char
        if op == "!":
            raise FilterError("expected '=' after '!'", column, text)
        return _Token("op", op, column), i + len(op)
    if char in "\"'":
        return _quoted(text, i, char, "string")
    if char == "`":
        return _quoted(text, i, char, "key")
    number = _NUMBER.match(text, i)
    end = _word_end(text, i)
    if number and number.end() == end:
        return _Token("number", number.group(), column, float(number.group())), end
    if end == i:
        raise FilterError(f"unexpected character {char!r}", column, text)
    return _Token("word", text[i:end], column), end


def _word_end(text: str, i: int) -> int:
    end = i
    while end < len(text) and not text[end].isspace() and text[end] not in "(),!<>=~\"'`":
        end += 1
    return end


def _quoted(text: str, i: int, quote: str, kind: str) -> tuple[_Token, int]:
    out: list[str] = []
    j = i + 1
    while j < len(text):
        char = text[j]
        if char == "\\" and j + 1 < len(text) and kind == "string":
            out.append(text[j + 1])
            j += 2
            continue
        if char == quote:
            return _Token(kind, text[i:j + 1], i + 1, "".join(out)), j + 1
        out.append(char)
        j += 1
    raise FilterError(f"unterminated {quote}...{quote}", i + 1, text)


# -- parser -----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def error(self, message: str, token: _Token | None = None) -> FilterError:
        token = token or self.current
        return FilterError(message, token.column, self.text)

    def keyword(self, word: str) -> bool:
        token = self.current
        if token.kind == "word" and token.text.lower() == word:
            self.pos += 1
            return True
        return False

    def parse(self) -> Node:
        if self.current.kind == "end":
            raise self.error("the filter is empty")
        node = self.expr()
        if self.current.kind != "end":
            raise self.error(f"expected 'and', 'or' or the end, found {self.current.text!r}")
        return node

    def expr(self) -> Node:
        alternatives = [self.conjunction()]
        while self.keyword("or"):
            alternatives.append(self.conjunction())
        return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))

    def conjunction(self) -> Node:
        items = [self.term()]
        while self.keyword("and"):
            items.append(self.term())
        return items[0] if len(items) == 1 else And(tuple(items))

    def term(self) -> Node:
        if self.keyword("not"):
            return Not(self.term())
        if self.current.kind == "(":
            self.advance()
            node = self.expr()
            if self.current.kind != ")":
                raise self.error(f"expected ')' to close the '(', found "
                                 f"{self.current.text or 'the end'!r}")
            self.advance()
            return node
        return self.compare()

    def compare(self) -> Compare:
        start = self.current
        field = self.field()
        if self.keyword("exists"):
            return Compare(field, "exists")
        if self.keyword("in"):
            return self.in_list(field, start)
        op = self.current
        if op.kind != "op":
            raise self.error(f"expected an operator (= != < <= > >= ~), 'exists' or 'in' "
                             f"after {self.text[start.column - 1:op.column - 1].strip()!r}")
        self.advance()
        value, numeric = self.value(op.text)
        return _checked(Compare(field, op.text, (value,), (numeric,)), start, self)

    def in_list(self, field: Field, start: _Token) -> Compare:
        if self.current.kind != "(":
            raise self.error("expected '(' after 'in'")
        self.advance()
        values, numeric = [], []
        while True:
            value, is_number = self.value("in")
            values.append(value)
            numeric.append(is_number)
            if self.current.kind == ")":
                self.advance()
                return _checked(Compare(field, "in", tuple(values), tuple(numeric)), start,
                                self)
            if self.current.kind != ",":
                raise self.error("expected ',' or ')' in the 'in' list")
            self.advance()

    def field(self) -> Field:
        token = self.current
        if token.kind != "word":
            raise self.error(f"expected a field (status, name, params.KEY, metrics.KEY, "
                             f"tags.KEY...), found {token.text or 'the end'!r}")
        self.advance()
        try:
            return _field_from(token.text, self)
        except FilterError:
            raise
        except ValueError as exc:
            raise self.error(str(exc), token)

    def value(self, after: str) -> tuple[Value, bool]:
        token = self.current
        if token.kind == "number":
            self.advance()
            return float(token.value), True
        if token.kind == "string":
            self.advance()
            return str(token.value), False
        if token.kind == "word" and token.text.lower() not in ("and", "or"):
            self.advance()
            return token.text, False
        raise self.error(f"expected a value after {after!r}")


def _field_from(text: str, parser: _Parser) -> Field:
    """A field from a word, maybe followed by a back-quoted key (``params.`a key```) and, for
    metrics, ``:min``/``:max`` right after it."""
    lower = text.lower()
    if lower in FIELDS:
        return Field(lower)
    group, dot, key = text.partition(".")
    if not dot or group.lower() not in GROUPS:
        raise ValueError(f"unknown field {text!r}: use status, name, project, start_time, "
                         "end_time, duration, params.KEY, metrics.KEY or tags.KEY")
    group = group.lower()
    suffix = ""
    if not key and parser.current.kind == "key":  # params.`a key`, then maybe :min
        quoted = parser.advance()
        key = str(quoted.value)
        after = parser.current
        if after.kind == "word" and after.text.startswith(":") and \
                after.column == quoted.column + len(quoted.text):
            suffix = parser.advance().text[1:]
    elif ":" in key:
        key, _, suffix = key.rpartition(":")
    if not key:
        raise ValueError(f"expected a key after '{group}.'")
    if suffix and group != "metrics":
        raise ValueError(f"{group}.{key}: ':min'/':max' apply to metrics only")
    if suffix and suffix.lower() not in ("min", "max", "last"):
        raise ValueError(f"{group}.{key}: ':{suffix}' is not an aggregate (use :min or :max)")
    return Field(group, key, suffix.lower() or "last")


def _checked(node: Compare, start: _Token, parser: _Parser) -> Compare:
    """Reject comparisons that can never make sense, pointing at the field."""
    kind = node.field.kind
    numeric_field = kind in ("metrics", "start_time", "end_time", "duration")
    if numeric_field and node.op == "~":
        raise parser.error(f"'~' compares text; {node.field} is a number", start)
    for value, numeric in zip(node.values, node.numeric, strict=True):
        if kind == "metrics" and not numeric:
            raise parser.error(f"{node.field} compares with numbers; {value!r} is not one",
                               start)
        if kind in ("start_time", "end_time") and time_value(value, numeric) is None:
            raise parser.error(f"{node.field} compares with a time (milliseconds since the "
                               f"epoch, or an ISO date like 2025-01-31); {value!r} is not one",
                               start)
        if kind == "duration" and duration_value(value, numeric) is None:
            raise parser.error(f"duration compares with seconds (or 90s, 5m, 2h, 1d); "
                               f"{value!r} is not one", start)
    return node


def parse(text: str) -> Node:
    """The tree of a filter expression; FilterError (with ``column``) when it does not parse."""
    return _Parser(text).parse()


def parse_field(text: str) -> Field:
    """A column or sort key: ``name``, ``params.lr``, ``metrics.loss:min``..."""
    parser = _Parser(text)
    field = parser.field()
    if parser.current.kind != "end":
        raise parser.error(f"unexpected {parser.current.text!r} after the field")
    return field


def parse_sort(text: str) -> SortKey:
    """``[-]FIELD``: descending with a leading ``-``."""
    descending = text.startswith("-")
    return SortKey(parse_field(text[1:] if descending else text), descending)


# -- values -----------------------------------------------------------------------------------


def time_value(value: Value, numeric: bool) -> float | None:
    """A time given as milliseconds since the epoch, or as an ISO date (UTC unless it says)."""
    if numeric:
        return float(value)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp() * 1000


def duration_value(value: Value, numeric: bool) -> float | None:
    """A duration in seconds, as a number or with a unit (``90s``, ``5m``, ``2h``, ``1d``)."""
    if numeric:
        return float(value)
    found = _DURATION.fullmatch(str(value))
    return float(found.group(1)) * _UNITS[found.group(2).lower()] if found else None


def number_of(text: Any) -> float | None:
    """The finite number a param holds (numbers, and strings that read as one), else None."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int | float) or (isinstance(text, str) and _NUMBER.fullmatch(text.strip())):
        number = float(text)
    else:
        return None
    return number if math.isfinite(number) else None


def text_of(value: Any) -> str:
    """A param value as the text a filter compares it with."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


# -- evaluation in Python (the CLI over the local store; the tests' reference) ---------------


def matches(node: Node, run: Any) -> bool:
    """Does ``run`` (a ``RunRecord``, or anything with the same attributes) match ``node``?"""
    if isinstance(node, And):
        return all(matches(item, run) for item in node.items)
    if isinstance(node, Or):
        return any(matches(item, run) for item in node.items)
    if isinstance(node, Not):
        return not matches(node.item, run)
    return _compare(node, run)


def field_value(field: Field, run: Any) -> Any:
    """The value of ``field`` for ``run``; None when the run does not have it."""
    if field.kind == "duration":
        end = run.end_time
        return None if end is None else (end - run.start_time) / 1000
    if field.key is None:
        return getattr(run, field.kind)
    if field.kind == "params":
        return run.params.get(field.key)
    if field.kind == "tags":
        return run.tags.get(field.key)
    if field.agg == "last":
        value = run.metrics.get(field.key)
    else:
        points = [v for _, v, _ in run.history(field.key) if v == v]
        value = (min(points) if field.agg == "min" else max(points)) if points else None
    return None if value is None or value != value else value


def _has(field: Field, run: Any) -> bool:
    if field.kind == "params":
        return field.key in run.params
    if field.kind == "tags":
        return field.key in run.tags
    if field.kind == "metrics":
        return field.key in run.metrics
    return field_value(field, run) is not None


def _compare(node: Compare, run: Any) -> bool:
    if node.op == "exists":
        return _has(node.field, run)
    if not _has(node.field, run):
        return False
    actual = field_value(node.field, run)
    if node.op == "in":
        return any(_one(node.field, "=", actual, v, n)
                   for v, n in zip(node.values, node.numeric, strict=True))
    return _one(node.field, node.op, actual, node.values[0], node.numeric[0])


def _one(field: Field, op: str, actual: Any, value: Value, numeric: bool) -> bool:
    left, right = _operands(field, actual, value, numeric)
    if left is None or right is None:  # SQL's NULL: no comparison holds
        return False
    if op == "~":
        return str(right).lower() in str(left).lower()
    return OPERATORS[op](left, right)


def _operands(field: Field, actual: Any, value: Value, numeric: bool) -> tuple[Any, Any]:
    kind = field.kind
    if kind in ("start_time", "end_time"):
        return actual, time_value(value, numeric)
    if kind == "duration":
        return actual, duration_value(value, numeric)
    if kind == "metrics":
        return actual, float(value) if numeric else str(value)
    if kind == "params":
        if numeric:
            return number_of(actual), float(value)
        return text_of(actual), str(value)
    if kind == "status":
        return actual, str(value).upper()
    return actual, _source_text(value, numeric)


def _source_text(value: Value, numeric: bool) -> str:
    if numeric and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: comparison operators: on Python values here, and on SQLAlchemy columns in the server's search
OPERATORS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
