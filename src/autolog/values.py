"""Turning what users and frameworks log into what the run format holds.

- metric values: floats (ints, bools, numpy scalars, one-element arrays converted; an int too
  large for a float becomes an infinity, with a warning); a one-element torch tensor is not read
  on the caller's thread (on a GPU that waits for the device): it becomes a
  :class:`TensorValue`, a snapshot the journal writer reads; strings, None, containers and
  multi-element arrays are skipped with one warning per key; NaN and infinities are kept;
- steps: ints (numpy and torch integers converted); a float, a bool or a numeric string is
  converted with a warning, anything else (``"abc"``, NaN) leaves the point on its key's
  automatic step, with a warning; steps beyond 64 bits are clamped, with a warning;
- params: flat ``str -> JSON scalar``, nested mappings flattened with ``.``, other values made
  JSON-safe (sequences and mappings as JSON text, classes and functions by qualified name,
  anything else as ``str``); two params that flatten to one name warn;
- keys: strings; other keys converted with ``str`` (one warning, and another when the text is
  also a key of the same call), empty keys skipped; text UTF-8 cannot hold warns.

Nothing here raises on what a user passes: a logging call warns (once per key and cause) and
goes on. These run on the caller's thread only for values that are not already of the plain
type, so the hot path for ``{"loss": 0.25}`` never enters this module.
"""

from __future__ import annotations

import json
import math
import operator
import sys
from collections.abc import Mapping
from typing import Any

from .report import warn_once

__all__ = ["TensorValue", "check_text", "clean_key", "clean_tags", "flatten_params", "metric",
           "not_a_mapping", "qualified_name", "read_metric", "resolve_name", "step_in_range",
           "text_bytes", "to_float", "to_param_value", "to_step"]

_SCALARS = (str, int, float, bool, type(None))
MAX_DEPTH = 32  # nested param mappings flattened this deep
MAX_NESTING = 8  # containers inside a param value kept this deep
MIN_STEP, MAX_STEP = -(2**63), 2**63 - 1  # steps are 64-bit integers everywhere


def to_float(value: Any) -> float | None:
    """``value`` as a float, or None if it is not a single number."""
    if isinstance(value, float):
        return value
    if isinstance(value, str | bytes | Mapping | list | tuple | set) or value is None:
        return None
    if isinstance(value, int):
        return _int_to_float(value)
    try:
        item = getattr(value, "item", None)
        if item is not None and callable(item):
            if _element_count(value) != 1:
                return None
            value = item()
            if isinstance(value, int):
                return _int_to_float(value)
            return float(value) if isinstance(value, float) else None
        return float(value)  # Decimal, Fraction, anything with __float__
    except OverflowError:  # a Decimal or Fraction beyond a float
        return math.inf * _sign(value)
    except Exception:  # whatever a user's object raises: not a number
        return None


def _int_to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _sign(value: Any) -> float:
    try:
        return -1.0 if value < 0 else 1.0
    except Exception:
        return 1.0


def _element_count(value: Any) -> int:
    numel = getattr(value, "numel", None)  # torch
    if callable(numel):
        return int(numel())
    size = getattr(value, "size", 1)  # numpy (an int attribute); 1 for scalars without it
    return size if isinstance(size, int) else 1


def clean_key(key: Any, what: str, siblings: Mapping[Any, Any] | None = None) -> str | None:
    """A usable key for a metric/param/tag, or None (with a warning) when there is none.

    ``siblings`` is the mapping ``key`` came from: a key converted to text that is also a key
    of it (``{5: 1.0, "5": 2.0}``) is warned about, since both land under one name.
    """
    if isinstance(key, str):
        if key:
            return key if type(key) is str else str.__str__(key)
        warn_once(f"empty {what} key", f"autolog: an empty {what} key was skipped", stacklevel=5)
        return None
    text = _text(key)
    warn_once(f"{what} key {type(key).__name__}",
              f"autolog: {what} key {_short(key)} ({type(key).__name__}) was converted to "
              f"{text!r}", stacklevel=5)
    if siblings is not None and text in siblings:
        warn_once(f"{what} key collision {text}",
                  f"autolog: {what} keys {_short(key)} ({type(key).__name__}) and {text!r} are "
                  f"both logged as {text!r}", stacklevel=5)
    return text or None


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def check_text(text: str, what: str) -> None:
    """Warn (once per text) when ``text`` holds characters UTF-8 cannot encode."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        warn_once(f"surrogates {what} {text}",
                  f"autolog: {what} {text!r} holds characters UTF-8 cannot encode (lone "
                  f"surrogates, e.g. undecodable bytes of a file name); the local store keeps "
                  f"it exactly and backends get them as \\xNN / \\uXXXX escapes",
                  stacklevel=5)


def metric(key: Any, value: Any, siblings: Mapping[Any, Any]
           ) -> tuple[Any, float | TensorValue | None]:
    """``(key, value)`` as a metric point takes them, or ``(None, None)`` to skip it (with a
    warning): the slow path of ``log_metrics``. A tensor's value is a :class:`TensorValue`, read
    by the journal writer."""
    clean = clean_key(key, "metric", siblings)
    if clean is None:
        return None, None
    converted = metric_value(clean, value)
    return (clean, converted) if converted is not None else (None, None)


def read_metric(key: Any, value: Any, siblings: Mapping[Any, Any]) -> tuple[Any, float | None]:
    """``(key, number)`` for a point of a metric dict handed over (read on the journal writer's
    thread, not the caller's), or ``(None, None)`` to skip it (with a warning). A one-element
    tensor is the caller's own copy, read as it is."""
    clean = clean_key(key, "metric", siblings)
    if clean is None:
        return None, None
    check_text(clean, "metric key")
    number: float | TensorValue | None
    if one_element_tensor(value):
        number = TensorValue(clean, value, handed_over=True).resolve()
    else:
        number = metric_value(clean, value)
        if isinstance(number, TensorValue):  # an integration's snapshot
            number = number.resolve()
    return (clean, number) if number is not None else (None, None)


class TensorValue:
    """A one-element torch tensor logged as a metric, read on the journal writer's thread.

    Reading a CUDA tensor (``.item()``, ``float(t)``) waits for everything queued on the device:
    on the training thread that stalls training at every logged step. So the caller's thread
    only takes a snapshot: a copy on the host made asynchronously (``non_blocking``, into pinned
    memory) with a CUDA event recorded after it, or a clone of a CPU tensor (the framework may
    update it in place). :meth:`resolve` waits for the event and reads the number, on the
    writer's thread.
    """

    __slots__ = ("event", "key", "tensor")

    def __init__(self, key: str, tensor: Any, handed_over: bool = False):
        """``handed_over``: the caller knows nothing changes ``tensor`` after this call (a
        framework's own per-step copy, as Lightning hands its loggers): a CPU tensor is then
        kept as it is instead of cloned (9 µs a step inside a fit)."""
        self.key = key
        self.event = None
        # one dispatched op where it can be (a training step leaves the caches cold, and each op
        # costs several microseconds there): detached only when it holds a graph
        snapshot = tensor.detach() if tensor.requires_grad else tensor
        if snapshot.is_cuda:
            import torch  # imported already: the tensor is one of its

            snapshot = snapshot.to("cpu", non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        elif snapshot.is_cpu and not handed_over:
            snapshot = snapshot.clone()
        self.tensor = snapshot

    def resolve(self) -> float | None:
        """The number, or None (with one warning per key) when it cannot be read."""
        try:
            if self.event is not None:
                self.event.synchronize()
            value = self.tensor.item()
            return float(value) if isinstance(value, int | float) else None
        except Exception as exc:
            warn_once(f"metric value {self.key}",
                      f"autolog: metric {self.key!r}: its tensor could not be read ({exc}); the "
                      "value was skipped (this warning is shown once per key)")
            return None


def one_element_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor) and value.numel() == 1


def metric_value(key: str, value: Any) -> float | TensorValue | None:
    if type(value) is TensorValue:  # an integration's snapshot
        return value
    if one_element_tensor(value):
        return TensorValue(key, value)
    converted = to_float(value)
    if converted is None:
        warn_once(f"metric value {key}",
                  f"autolog: metric {key!r} got {type(value).__name__} {_short(value)}, which is "
                  f"not a number; the value was skipped (this warning is shown once per key)",
                  stacklevel=5)
    elif math.isinf(converted) and not _is_float(value):
        warn_once(f"metric overflow {key}",
                  f"autolog: metric {key!r} got {_short(value)}, beyond a 64-bit float; it was "
                  f"logged as {converted} (this warning is shown once per key)", stacklevel=5)
    return converted


def _is_float(value: Any) -> bool:
    """Is ``value`` a floating-point number already (an infinity there is no overflow)?"""
    if isinstance(value, float):
        return True
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    return getattr(dtype, "is_floating_point", None) is True or getattr(dtype, "kind", "") == "f"


def to_step(step: Any) -> int | None:
    """``step`` as an int, or None (the key's automatic step), with a warning for any change."""
    if isinstance(step, int) and not isinstance(step, bool):
        return step_in_range(int(step))
    if not isinstance(step, bool):
        try:
            return step_in_range(operator.index(step))  # numpy / torch integers
        except Exception:
            pass
    number: float | None
    if isinstance(step, str):
        try:
            number = float(step.strip())
        except ValueError:
            number = None
    else:
        number = to_float(step)
    if number is None or not math.isfinite(number):
        warn_once(f"step {type(step).__name__} unusable",
                  f"autolog: step must be an integer, got {type(step).__name__} {_short(step)}; "
                  f"the points were logged at each key's next automatic step", stacklevel=4)
        return None
    converted = step_in_range(int(number))
    warn_once(f"step {type(step).__name__} converted",
              f"autolog: step must be an integer, got {type(step).__name__} {_short(step)}; "
              f"it was logged as step {converted}", stacklevel=4)
    return converted


def step_in_range(step: int) -> int:
    """``step`` clamped to 64 bits, with a warning when it had to be."""
    if MIN_STEP <= step <= MAX_STEP:
        return step
    clamped = MAX_STEP if step > 0 else MIN_STEP
    warn_once("step out of range",
              f"autolog: step {_short(step)} is beyond a 64-bit integer; it was logged as "
              f"{clamped}", stacklevel=4)
    return clamped


def _tag_value(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, str):  # a str enum (Lightning's TrainerFn): its value, not its name
        return str.__str__(value)
    return _text(value)


def text_bytes(text: Any, name: str) -> bytes:
    """The bytes of a text artifact: UTF-8; undecodable bytes Python holds as surrogates are
    written back as the bytes they were; a value that is not text is written as its ``str``."""
    if isinstance(text, bytes | bytearray | memoryview):
        return bytes(text)
    if not isinstance(text, str):
        warn_once(f"log_text {type(text).__name__}",
                  f"autolog.log_text takes a str, got {type(text).__name__}; {name!r} holds its "
                  f"str()", stacklevel=4)
        text = _text(text)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape" if _escapes_only(text) else
                           "backslashreplace")


def _escapes_only(text: str) -> bool:
    return all(0xDC80 <= ord(c) <= 0xDCFF for c in text if 0xD800 <= ord(c) <= 0xDFFF)


def not_a_mapping(value: Any, call: str) -> None:
    warn_once(f"not a mapping {call} {type(value).__name__}",
              f"autolog.{call} takes a mapping (a dict), got {type(value).__name__} "
              f"{_short(value)}; nothing was logged", stacklevel=4)


def clean_tags(tags: Any) -> dict[str, str]:
    """``{key: text}`` of tags: keys cleaned, values as ``str``."""
    try:
        items = list(tags.items())
    except Exception:
        not_a_mapping(tags, "set_tags")
        return {}
    clean = {}
    for raw_key, value in items:
        key = clean_key(raw_key, "tag", tags)
        if key is not None:
            clean[key] = _tag_value(value)
            check_text(key, "tag key")
            check_text(clean[key], f"tag {key!r} value")
    return clean


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class (or of a function)."""
    return f"{getattr(cls, '__module__', '')}.{cls.__qualname__}".lstrip(".")


def resolve_name(qualified: str) -> Any:
    """What ``module.QualName`` names, or None when it cannot be imported here (a class defined
    in a script's ``__main__``, a package not installed)."""
    import importlib

    module_name, _, name = qualified.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name, None)
    except Exception:
        return None


def to_param_value(value: Any) -> Any:
    """A JSON scalar standing for ``value``: scalars as they are, containers as JSON text."""
    if isinstance(value, _SCALARS):
        return value
    converted = _jsonable(value, 0)
    if isinstance(converted, list | dict):
        try:
            return json.dumps(converted, sort_keys=True)
        except (TypeError, ValueError):
            return str(value)
    return converted


def _jsonable(value: Any, depth: int) -> Any:
    """``value`` as JSON-able data: numpy/torch scalars as numbers, sequences as lists, mappings
    as dicts with string keys, classes and functions by qualified name, a configurable object
    (a scikit-learn estimator: its own params are logged separately) by its class name."""
    if isinstance(value, _SCALARS):
        return value
    if depth > MAX_NESTING:
        return str(value)
    item = getattr(value, "item", None)
    if callable(item) and _element_count(value) == 1:  # numpy / torch scalars
        try:
            scalar = item()
        except Exception:
            scalar = None
        if isinstance(scalar, _SCALARS) and scalar is not None:
            return scalar
    if isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        return [_jsonable(v, depth + 1) for v in sorted(value, key=repr)]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, type):
        return qualified_name(value)
    if hasattr(value, "get_params"):
        return type(value).__name__
    if callable(value) and isinstance(getattr(value, "__qualname__", None), str):
        return qualified_name(value)
    return str(value)


def flatten_params(params: Mapping[Any, Any], prefix: str = "", depth: int = 0,
                   out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}}`` -> ``{"optimizer.lr": 0.1}``, values made JSON scalars.

    Two params that end up under one name (``{"a": {"b": 1}, "a.b": 2}``) keep the later value,
    with a warning.
    """
    out = {} if out is None else out
    try:
        items = list(params.items())
    except Exception:
        not_a_mapping(params, "log_params")
        return out
    for raw_key, value in items:
        key = clean_key(raw_key, "param", params)
        if key is None:
            continue
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and depth < MAX_DEPTH:
            flatten_params(value, f"{full}.", depth + 1, out)
            continue
        if full in out:
            warn_once(f"param collision {full}",
                      f"autolog: param {full!r} is given twice (nested and dotted names flatten "
                      f"to one); the later value {_short(value)} is kept", stacklevel=4)
        check_text(full, "param name")
        out[full] = _param_value(value)
        if isinstance(out[full], str):
            check_text(out[full], f"param {full!r} value")
    return out


def _param_value(value: Any) -> Any:
    try:
        return to_param_value(value)
    except Exception:  # a user's object whose str() or iteration raises
        return f"<{type(value).__name__}>"


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."
