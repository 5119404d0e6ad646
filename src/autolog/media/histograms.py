"""Histograms: values binned on the writer's thread, or counts and edges given as they are.

The caller's thread only takes a copy, of at most :data:`MAX_VALUES` values (an evenly strided
sample beyond that; the meta says how many values there were and how many were binned). A torch
tensor on a GPU is copied to host memory with ``non_blocking=True`` and a CUDA event recorded
after the copy: the writer's thread waits on that event, so the training thread never waits for
the GPU. NaN and infinite values are counted apart (``nan``, ``inf``) and left out of the bins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .events import MediaError, Prepared

__all__ = ["DEFAULT_BINS", "MAX_VALUES", "prepare_histogram"]

DEFAULT_BINS = 64
MAX_BINS = 10_000
MAX_VALUES = 1_000_000


def prepare_histogram(values: Any, bins: int = DEFAULT_BINS) -> Prepared:
    if not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise MediaError(f"bins must be a whole number from 1 to {MAX_BINS}, got {bins!r}")
    if _is_counts_and_edges(values):
        return _prepare_binned(*values)
    if callable(getattr(values, "detach", None)):
        return _prepare_tensor(values, bins)
    return _prepare_array(values, bins)


def _is_counts_and_edges(values: Any) -> bool:
    return isinstance(values, tuple) and len(values) == 2 and all(
        isinstance(v, Sequence) or hasattr(v, "shape") for v in values)


def _prepare_binned(counts: Any, edges: Any) -> Prepared:
    import numpy as np

    try:
        counts_array = np.asarray(counts, dtype=np.float64).ravel()
        edges_array = np.asarray(edges, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise MediaError(f"(counts, edges) must hold numbers: {exc}")
    if edges_array.size != counts_array.size + 1 or counts_array.size == 0:
        raise MediaError(f"(counts, edges) needs one more edge than counts, got "
                         f"{counts_array.size} counts and {edges_array.size} edges")
    if not (np.isfinite(edges_array).all() and np.all(np.diff(edges_array) > 0)):
        raise MediaError("histogram edges must be finite and increasing")
    if not np.isfinite(counts_array).all() or (counts_array < 0).any():
        raise MediaError("histogram counts must be finite and not negative")

    def write(stem: Path) -> tuple[dict[str, Path], dict[str, Any]]:
        meta = {"bins": int(counts_array.size), "count": float(counts_array.sum()),
                "min": float(edges_array[0]), "max": float(edges_array[-1])}
        return _write(stem, counts_array.tolist(), edges_array.tolist(), meta)

    return Prepared(write, ".json", counts_array.nbytes + edges_array.nbytes)


def _prepare_array(values: Any, bins: int) -> Prepared:
    import numpy as np

    try:
        array = np.asarray(values)
    except Exception as exc:
        raise MediaError(f"{type(values).__name__} is not an array of numbers: {exc}")
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise MediaError(f"a histogram needs numbers, got an array of {array.dtype}")
    total = int(array.size)
    sample = _sample(array.reshape(-1)).astype(np.float64)  # a copy
    note = None
    if total and not np.isfinite(sample).any():
        note = (f"all {total:,} values are NaN or infinite: the histogram records only how many "
                "there are")
    return Prepared(lambda stem: _write_values(sample, total, bins, stem), ".json",
                    sample.nbytes, note)


def _sample(flat: Any) -> Any:
    """At most MAX_VALUES values, evenly strided (a view: the copy is made by the caller)."""
    if flat.shape[0] <= MAX_VALUES:
        return flat
    stride = -(-flat.shape[0] // MAX_VALUES)
    return flat[::stride]


def _prepare_tensor(tensor: Any, bins: int) -> Prepared:
    """A torch tensor: sampled on its device, copied to host without a sync on this thread."""
    import torch

    flat = tensor.detach().reshape(-1)
    total = int(flat.numel())
    flat = _sample(flat)
    event = None
    if flat.is_cuda:
        host = flat.to(device="cpu", dtype=torch.float32, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
    else:
        host = flat.to(dtype=torch.float32)
        if host.data_ptr() == flat.data_ptr():
            host = host.clone()  # to() returned the tensor itself: the training may change it

    def write(stem: Path) -> tuple[dict[str, Path], dict[str, Any]]:
        if event is not None:
            event.synchronize()  # this thread waits for the copy, not the training thread
        return _write_values(host.numpy().astype("float64"), total, bins, stem)

    return Prepared(write, ".json", int(host.numel()) * 4)


def _write_values(values: Any, total: int, bins: int,
                  stem: Path) -> tuple[dict[str, Path], dict[str, Any]]:
    import numpy as np

    finite_mask = np.isfinite(values)
    finite = values[finite_mask]
    nan = int(np.isnan(values).sum())
    meta: dict[str, Any] = {"bins": bins, "count": total, "sampled": int(values.size),
                            "nan": nan, "inf": int(values.size - finite.size - nan)}
    if finite.size:
        counts, edges = np.histogram(finite, bins=bins)
        meta.update(min=float(finite.min()), max=float(finite.max()),
                    mean=float(finite.mean()))
        return _write(stem, counts.tolist(), edges.tolist(), meta)
    return _write(stem, [], [], meta)


def _write(stem: Path, counts: list[Any], edges: list[float],
           meta: dict[str, Any]) -> tuple[dict[str, Path], dict[str, Any]]:
    path = stem.parent / f"{stem.name}.json"
    path.write_text(json.dumps({"counts": counts, "edges": edges}), encoding="utf-8")
    return {"path": path}, meta
