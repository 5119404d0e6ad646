"""Turning what users and frameworks log into what the run format holds.

- metric values: floats (ints, bools, numpy scalars, one-element arrays converted); a
  one-element torch tensor is not read on the caller's thread (on a GPU that waits for the
  device): it becomes a :class:`TensorValue`, a snapshot the journal writer reads; strings, None,
  containers and multi-element arrays are skipped with one warning per key; NaN and infinities
  are kept;
- params: flat ``str -> JSON scalar``, nested mappings flattened with ``.``, other values made
  JSON-safe (sequences and mappings as JSON text, classes and functions by qualified name,
  anything else as ``str``);
- keys: strings; other keys converted with ``str`` (one warning), empty keys skipped.

These run on the caller's thread only for values that are not already of the plain type, so the
hot path for ``{"loss": 0.25}`` never enters this module.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from .report import warn_once

__all__ = ["TensorValue", "clean_key", "flatten_params", "qualified_name", "resolve_name",
           "to_float", "to_param_value", "to_step"]

_SCALARS = (str, int, float, bool, type(None))
MAX_DEPTH = 32  # nested param mappings flattened this deep
MAX_NESTING = 8  # containers inside a param value kept this deep


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

    def __init__(self, key: str, tensor: Any):
        self.key = key
        self.event = None
        snapshot = tensor.detach()
        if snapshot.device.type == "cuda":
            import torch  # imported already: the tensor is one of its

            snapshot = snapshot.to("cpu", non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        elif snapshot.device.type == "cpu":
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


def _one_element_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor) and value.numel() == 1


def metric_value(key: str, value: Any) -> float | TensorValue | None:
    if _one_element_tensor(value):
        return TensorValue(key, value)
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
