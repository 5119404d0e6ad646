"""Turning what users and frameworks log into what the run format holds.

- metric values: floats (ints, bools, numpy and torch scalars, one-element arrays and tensors
  converted); strings, None, containers and multi-element arrays are skipped with one warning per
  key; NaN and infinities are kept;
- params: flat ``str -> JSON scalar``, nested mappings flattened with ``.``, other values made
  JSON-safe (sequences of scalars as JSON text, anything else as ``str``);
- keys: strings; other keys converted with ``str`` (one warning), empty keys skipped.

These run on the caller's thread only for values that are not already of the plain type, so the
hot path for ``{"loss": 0.25}`` never enters this module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import warn_once

__all__ = ["clean_key", "flatten_params", "to_float", "to_param_value", "to_step"]

_SCALARS = (str, int, float, bool, type(None))
MAX_DEPTH = 32


def to_float(value: Any) -> float | None:
    """``value`` as a float, or None if it is not a single number."""
    if isinstance(value, float):
        return value
    if isinstance(value, str | bytes | Mapping | list | tuple | set) or value is None:
        return None
    if isinstance(value, int):
        return float(value)
    item = getattr(value, "item", None)
    if item is not None and callable(item):
        if _element_count(value) != 1:
            return None
        try:
            value = item()
        except Exception:
            return None
        return float(value) if isinstance(value, int | float) else None
    try:
        return float(value)  # Decimal, Fraction, anything with __float__
    except (TypeError, ValueError):
        return None


def _element_count(value: Any) -> int:
    numel = getattr(value, "numel", None)  # torch
    if callable(numel):
        return int(numel())
    size = getattr(value, "size", 1)  # numpy (an int attribute); 1 for scalars without it
    return size if isinstance(size, int) else 1


def clean_key(key: Any, what: str) -> str | None:
    """A usable key for a metric/param/tag, or None (with a warning) when there is none."""
    if isinstance(key, str):
        if key:
            return key
        warn_once(f"empty {what} key", f"autolog: an empty {what} key was skipped", stacklevel=4)
        return None
    text = str(key)
    warn_once(f"{what} key {type(key).__name__}",
              f"autolog: {what} key {key!r} ({type(key).__name__}) was converted to {text!r}",
              stacklevel=4)
    return text or None


def metric_value(key: str, value: Any) -> float | None:
    converted = to_float(value)
    if converted is None:
        warn_once(f"metric value {key}",
                  f"autolog: metric {key!r} got {type(value).__name__} {_short(value)}, which is "
                  f"not a number; the value was skipped (this warning is shown once per key)",
                  stacklevel=4)
    return converted


def to_step(step: Any) -> int:
    if isinstance(step, int):
        return int(step)
    converted = to_float(step)
    if converted is None or not math.isfinite(converted):
        raise TypeError(f"step must be an integer, got {type(step).__name__} {_short(step)}")
    return int(converted)


def to_param_value(value: Any) -> Any:
    """A JSON scalar for a param value."""
    if isinstance(value, _SCALARS):
        return value
    item = getattr(value, "item", None)
    if callable(item) and _element_count(value) == 1:  # numpy / torch scalars
        try:
            value = item()
            if isinstance(value, _SCALARS):
                return value
        except Exception:
            pass
    if isinstance(value, list | tuple | set | frozenset):
        seq = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
        try:
            return json.dumps([to_param_value(v) for v in seq])
        except (TypeError, ValueError):
            pass
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    name = getattr(value, "__qualname__", None)
    if callable(value) and isinstance(name, str):
        return f"{getattr(value, '__module__', '')}.{name}".lstrip(".")
    return str(value)


def flatten_params(params: Mapping[Any, Any], prefix: str = "", depth: int = 0,
                   out: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}}`` -> ``{"optimizer.lr": 0.1}``, values made JSON scalars."""
    out = {} if out is None else out
    for raw_key, value in params.items():
        key = clean_key(raw_key, "param")
        if key is None:
            continue
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and depth < MAX_DEPTH:
            flatten_params(value, f"{full}.", depth + 1, out)
        else:
            out[full] = to_param_value(value)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
