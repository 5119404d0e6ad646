"""The local store: one directory per run whose journal (``events.jsonl``) is the source of truth.

- :mod:`.files`: the run directory's layout, file locks, atomic writes;
- :mod:`.codec`: the line encoding, and the one non-finite float codec;
- :mod:`.reader`: reading runs back (:class:`RunRecord`, :func:`list_runs`, ...);
- :mod:`.writer`: buffers and the writer thread.

The format is documented in ``docs/format.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .files import ARTIFACTS, DELIVERY, FORMAT_VERSION, JOURNAL, LOCK, META

if TYPE_CHECKING:
    from .reader import (
        MediaRecord,
        RunRecord,
        find_run,
        iter_journal,
        list_runs,
        load_run,
        lock_is_held,
        read_meta,
        start_record,
    )

__all__ = ["ARTIFACTS", "DELIVERY", "FORMAT_VERSION", "JOURNAL", "LOCK", "META", "MediaRecord",
           "RunRecord", "find_run", "iter_journal", "list_runs", "load_run", "lock_is_held",
           "read_meta", "start_record"]


def __getattr__(name: str) -> Any:
    """The reader's names, loaded on first use (the files' names are already here): a training
    process writes, it does not read."""
    if name in __all__:
        from . import reader

        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
