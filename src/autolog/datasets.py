"""Dataset fingerprints: the inputs of a training call as a few ``dataset.<name>.*`` tags, so
that two runs trained on different data are told apart (MLflow's ``log_input`` in spirit).
Tags, not params: they describe the data, they are not settings of the training.

For each dataset (``training``, ``validation``, ``validation_0``...): ``rows``, ``shape``,
``dtype`` (or the columns' dtypes of a DataFrame), ``kind`` (its class) and ``digest``: 16 hex
characters of BLAKE2b over the shape, the dtypes and the bytes of at most :data:`SAMPLE_ROWS`
evenly spaced rows of the inputs and of the targets, so it costs the same on a billion rows as on
two thousand. A change to rows outside the sample can go unseen: the digest tells datasets
apart, it does not prove two equal. Data that cannot be sampled without reading it (a
generator, a ``tf.data`` pipeline, a DataLoader) gets its kind and, when it has one, its
length; a Hugging Face ``datasets.Dataset`` its own fingerprint.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["SAMPLE_ROWS", "fingerprint"]

SAMPLE_ROWS = 2_000


def fingerprint(name: str, x: Any, y: Any = None) -> dict[str, Any]:
    """``dataset.<name>.*`` tags describing inputs ``x`` (and targets ``y``); {} when ``x``
    is None or cannot be described."""
    if x is None:
        return {}
    found = _describe(x)
    if found is None:
        return {}
    summary, digest = found
    if digest is not None and y is not None:
        targets = _describe(y)
        digest.update(b"|targets|")
        if targets is not None and targets[1] is not None:
            digest.update(targets[1].digest())
        summary["targets_shape"] = targets[0].get("shape") if targets else None
    if digest is not None:
        summary["digest"] = digest.hexdigest()
    return {f"dataset.{name}.{key}": value for key, value in summary.items()
            if value is not None}


def _describe(data: Any) -> tuple[dict[str, Any], Any] | None:
    """(summary, a running digest or None)."""
    kind = f"{type(data).__module__}.{type(data).__qualname__}"
    if hasattr(data, "_fingerprint") and hasattr(data, "num_rows"):  # datasets.Dataset
        return {"kind": kind, "rows": int(data.num_rows), "digest_of": "datasets"}, \
            _hasher(str(data._fingerprint).encode())
    if hasattr(data, "iloc") and hasattr(data, "dtypes"):
        return _frame(data, kind)
    if _is_sparse(data):
        return _sparse(data, kind)
    if hasattr(data, "num_row") and hasattr(data, "num_col"):  # xgboost.DMatrix
        return _dmatrix(data, kind)
    array = _array(data)
    if array is not None:
        return _numpy(array, kind)
    tensors = getattr(getattr(data, "dataset", data), "tensors", None)
    if isinstance(tensors, tuple) and tensors:  # a (DataLoader of a) torch TensorDataset
        inner = _describe(tensors[0])
        if inner is not None:
            summary, digest = inner
            for other in tensors[1:]:
                more = _describe(other)
                if digest is not None and more is not None and more[1] is not None:
                    digest.update(more[1].digest())
            return {**summary, "kind": kind}, digest
    length = _length(data)
    return ({"kind": kind, "rows": length}, None) if length is not None or kind else None


def _hasher(seed: bytes = b"") -> Any:
    digest = hashlib.blake2b(digest_size=8)
    digest.update(seed)
    return digest


def _sample_index(rows: int) -> Any:
    import numpy as np

    if rows <= SAMPLE_ROWS:
        return slice(None)
    return np.linspace(0, rows - 1, SAMPLE_ROWS).round().astype(np.int64)


def _array(data: Any) -> Any:
    """``data`` as a numpy array when that is cheap and safe (no GPU copy, no generator)."""
    import numpy as np

    if isinstance(data, np.ndarray):
        return data
    if callable(getattr(data, "detach", None)):  # torch
        return data.detach().numpy() if getattr(data, "device", None) is not None and \
            str(data.device) == "cpu" else None
    if isinstance(data, list | tuple) and data and not isinstance(data[0], dict):
        try:
            array = np.asarray(data)
        except (ValueError, TypeError):
            return None
        return array if array.dtype != object else None
    return None


def _numpy(array: Any, kind: str) -> tuple[dict[str, Any], Any]:
    import numpy as np

    shape = list(array.shape)
    summary = {"kind": kind, "rows": shape[0] if shape else 1, "shape": str(shape),
               "dtype": str(array.dtype)}
    digest = _hasher(f"{shape}|{array.dtype}|".encode())
    if array.ndim:
        sample = np.ascontiguousarray(array[_sample_index(shape[0])])
        digest.update(sample.tobytes() if sample.dtype != object else repr(sample.tolist())
                      .encode())
    return summary, digest


def _frame(frame: Any, kind: str) -> tuple[dict[str, Any], Any]:
    import pandas as pd

    rows = len(frame)
    shape = [rows, *([frame.shape[1]] if frame.ndim == 2 else [])]
    dtypes = ([str(t) for t in frame.dtypes] if frame.ndim == 2 else [str(frame.dtype)])
    dtype = dtypes[0] if len(set(dtypes)) == 1 else "mixed"
    columns = [str(c) for c in frame.columns] if frame.ndim == 2 else [str(frame.name)]
    digest = _hasher(f"{shape}|{dtypes}|{columns}|".encode())
    sample = frame.iloc[_sample_index(rows)]
    digest.update(pd.util.hash_pandas_object(sample, index=False).to_numpy().tobytes())
    return {"kind": kind, "rows": rows, "shape": str(shape), "dtype": dtype}, digest


def _is_sparse(data: Any) -> bool:
    return (type(data).__module__ or "").startswith("scipy.sparse") and hasattr(data, "tocsr")


def _sparse(matrix: Any, kind: str) -> tuple[dict[str, Any], Any]:
    shape = list(matrix.shape)
    sample = matrix.tocsr()[_sample_index(shape[0])]
    digest = _hasher(f"{shape}|{matrix.dtype}|{matrix.nnz}|".encode())
    for part in (sample.data, sample.indices, sample.indptr):
        digest.update(part.tobytes())
    return {"kind": kind, "rows": shape[0], "shape": str(shape), "dtype": str(matrix.dtype)}, \
        digest


def _dmatrix(matrix: Any, kind: str) -> tuple[dict[str, Any], Any]:
    """An XGBoost DMatrix holds its data in native memory: its size and labels are hashed."""
    import numpy as np

    shape = [int(matrix.num_row()), int(matrix.num_col())]
    digest = _hasher(f"{shape}|".encode())
    labels = np.asarray(matrix.get_label())
    digest.update(np.ascontiguousarray(labels[_sample_index(labels.size)]).tobytes())
    return {"kind": kind, "rows": shape[0], "shape": str(shape), "dtype": "float32",
            "digest_of": "shape and labels"}, digest


def _length(data: Any) -> int | None:
    dataset = getattr(data, "dataset", None)  # a torch DataLoader: its dataset's length
    for candidate in (dataset, data):
        if candidate is None:
            continue
        try:
            return len(candidate)
        except TypeError:
            continue
    return None
