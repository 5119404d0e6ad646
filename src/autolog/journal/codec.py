"""The journal's encoding: one strict JSON object per line, and the one non-finite float codec.

JSON has no literal for NaN and the infinities, so they travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` — in the journal, in the http backend's requests and in the
server's answers alike (all use :func:`float_to_json` / :func:`float_from_json`).

Text UTF-8 cannot hold (lone surrogates: undecodable bytes of ``sys.argv`` or a file name as
Python decodes them, ``"caf\\udce9"``) is written as JSON ``\\uXXXX`` escapes, which read back as
the very same string; backends, which need valid Unicode, get it through :func:`valid_text`
(``"caf\\\\xe9"``). An event that cannot be encoded at all costs only itself.

Every record starts with ``{"t":"``, a sequence that cannot occur inside a JSON string: a line
torn by a writer killed in the middle of it, and continued by the next append, is split back
into its records by :func:`decode_line`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["RECORD_START", "decode_line", "dumps_line", "encode_line", "encode_record",
           "float_from_json", "float_to_json", "jsonable", "metrics_record", "valid_text"]

NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode
_dumps_ascii = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_SURROGATE = re.compile("[\ud800-\udfff]")
_raw_decode = json.JSONDecoder().raw_decode
RECORD_START = b'{"t":"'  # how every journal record starts (the type comes first)
_START = RECORD_START.decode()


def float_to_json(value: float) -> float | str:
    """A float as JSON can carry it: itself, or the name of a non-finite value."""
    if math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def float_from_json(raw: Any) -> float:
    """The float a journal or request value stands for (a number, or a non-finite's name)."""
    return NONFINITE[raw] if isinstance(raw, str) else float(raw)


def jsonable(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth, replaced by its name."""
    if isinstance(value, float):
        return float_to_json(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps_line(record: Any) -> str:
    """One compact, strict JSON line (no newline)."""
    try:
        return _dumps(record)
    except ValueError:  # a NaN or infinity somewhere: the rare path
        return _dumps(jsonable(record))


def encode_line(record: Any) -> bytes:
    """``record`` as one journal line, ``\\n`` included (see :func:`encode_record`)."""
    return encode_record(record)[0]


def encode_record(record: Any) -> tuple[bytes, str | None]:
    """``record`` as one journal line, and what had to be changed to encode it (None: nothing).

    Text with lone surrogates is written with JSON ``\\u`` escapes and reads back unchanged
    (only such lines are ASCII-escaped). A value JSON has no type for (a plugin may hand over
    anything) is written as its ``str``, and a mapping key that is not a string as its ``str``:
    those are the changes reported.
    """
    try:
        text = dumps_line(record)
    except (TypeError, ValueError, RecursionError) as exc:
        return _dumps_ascii(_plain(record, 0)).encode("ascii") + b"\n", \
            f"{type(exc).__name__}: {exc}"
    try:
        return text.encode("utf-8") + b"\n", None
    except UnicodeEncodeError:
        return _dumps_ascii(jsonable(record)).encode("ascii") + b"\n", None


def _plain(value: Any, depth: int) -> Any:
    """``value`` made of JSON types only: other objects as their ``str``."""
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, float):
        return float_to_json(value)
    if depth > 64:
        return _str(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else _str(k): _plain(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    return _str(value)


def _str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def metrics_record(points: Iterable[tuple[Any, ...]]) -> tuple[dict[str, Any], dict[str, float]]:
    """A columnar ``metrics`` record of ``(key, step, value, timestamp_ms)`` points, and each
    key's last value."""
    columns: dict[str, tuple[list[int], list[float], list[int]]] = {}
    for key, step, value, ts in points:
        col = columns.get(key)
        if col is None:
            col = columns[key] = ([], [], [])
        col[0].append(step)
        col[1].append(value)
        col[2].append(ts)
    last = {key: col[1][-1] for key, col in columns.items()}
    return {"t": "metrics", "d": columns}, last


def valid_text(value: Any) -> Any:
    """``value`` (a string, or a list/dict of them at any depth) with lone surrogates replaced
    by readable escapes: ``\\udc80``-``\\udcff`` (an undecodable byte, as Python's
    ``surrogateescape`` holds it) as ``\\\\xNN``, any other as ``\\\\uXXXX``. What a backend
    gets, since no tracker stores text that is not valid Unicode."""
    if isinstance(value, str):
        return _SURROGATE.sub(_escape, value) if not value.isascii() else value
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [valid_text(v) for v in value]
    return value


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def decode_line(line: bytes) -> list[dict[str, Any]]:
    """The records of one complete journal line: normally one; none for a line that is not a
    record.

    A process killed in the middle of writing a line (a ``multiprocessing`` worker terminated
    while its writer thread appends: a fatal signal cuts a write between pages) leaves it torn,
    and the next append, by any process, continues it: ``<torn part><a whole record>``. Parsed as
    one line, both were lost. Here the whole record is kept (and the first part too when it is a
    whole record that only lacks its newline); a torn part is skipped. The journal reader, the
    tails' takeover and the UI's index all read lines through this function, so they agree on
    which records a line holds.
    """
    try:
        record = json.loads(line)
    except ValueError:
        return _resync(line.decode("utf-8", "replace").rstrip())  # rare: a torn line
    return [record] if isinstance(record, dict) else []


def _resync(text: str) -> list[dict[str, Any]]:
    """``<torn part><record>``: the record is the one starting with :data:`RECORD_START` that
    ends where the line ends. No JSON string holds that start (its quotes would be escaped),
    and text starting inside the torn part cannot parse as one value up to the line's end (the
    record that follows it is closed, what the torn part opened is not)."""
    pos = text.find(_START, 1)
    while pos > 0:
        try:
            record, end = _raw_decode(text, pos)
        except ValueError:
            end = -1
        if end == len(text) and isinstance(record, dict):
            try:
                head = json.loads(text[:pos])  # whole, only its newline missing
            except ValueError:
                return [record]
            return [head, record] if isinstance(head, dict) else [record]
        pos = text.find(_START, pos + 1)
    return []
