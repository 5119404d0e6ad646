"""What the file-writing backends share (tensorboard, dvclive, clearml): SDK imports with a clear
message, names safe on every file system, the directory of a run among its parents, and
appends that a retried or resumed delivery never doubles.

Not a plugin: :mod:`autolog.plugins` skips modules whose names start with ``_``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from ..journal.files import atomic_write
from ..journal.reader import start_record
from .base import BackendUnavailable, RunRef

__all__ = ["append_once", "import_sdk", "lineage", "missing_sdk", "run_dirname", "safe_name",
           "write_atomic", "write_bytes_atomic"]

_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


def missing_sdk(backend: str, extra: str, why: object) -> BackendUnavailable:
    """The one message for a backend whose SDK is not installed."""
    return BackendUnavailable(
        f"the {backend} backend needs its SDK: pip install 'autolog-ml[{extra}]' ({why}). "
        f"Nothing is lost: the local journal keeps every run, and `autolog sync --to {backend}` "
        "delivers them once it is installed.")


def import_sdk(module: str, backend: str, extra: str) -> ModuleType:
    """``import module``, or :class:`BackendUnavailable` with the ``pip install`` line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_sdk(backend, extra, exc) from exc


def safe_name(text: str, limit: int = 100) -> str:
    """``text`` as one path component: no separators, control or reserved characters."""
    name = _UNSAFE.sub("_", text).strip(" .")
    return name[:limit] or "_"


def run_dirname(start: dict[str, Any]) -> str:
    """``<run name>-<first 8 characters of the id>``: readable and unique."""
    return f"{safe_name(start.get('name') or 'run', 80)}-{start['id'][:8]}"


def lineage(run: RunRef) -> list[dict[str, Any]]:
    """The start records of the run's ancestors and the run, the top-level run first.

    Read from the local store (a run's ``meta.json`` exists from its first moment), so a
    child's place is known even when it is delivered before its parent.
    A parent missing from the store ends the chain (the child is then treated as top-level).
    """
    chain = [run.start]
    seen = {run.id}
    parent = run.parent_id
    while parent and parent not in seen:
        start = start_record(run.path.parent / parent, from_meta=True)
        if start is None:
            break
        chain.append(start)
        seen.add(parent)
        parent = start.get("parent")
    return chain[::-1]


def append_once(path: Path, data: bytes, sizes: dict[str, int], key: str) -> None:
    """Append ``data`` to ``path``, first cutting what an unacknowledged try left behind.

    ``sizes[key]`` is the file's size after the last acknowledged call (kept in the run's
    delivery state, which is saved only when a call succeeds): a failed or killed call may have
    appended part of a batch; the retry cuts the file back to the acknowledged size and
    appends the batch again, so no line is ever written twice.
    """
    acked = sizes.get(key, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        if f.tell() > acked:
            f.truncate(acked)
            f.seek(acked)
        f.write(data)
        sizes[key] = f.tell()


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (its directory made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once (its directory made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data)
