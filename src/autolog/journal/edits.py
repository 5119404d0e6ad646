"""Edits to a recorded run (rename, tags, note, delete/restore), as journal events.

The journal stays the source of truth for a run in the local store, edits included: an edit is
one more line appended to ``events.jsonl``, written with a single ``write(2)`` on an
``O_APPEND`` descriptor, so it never interleaves with the lines a training process may be
appending to the same journal. Readers (``RunRecord``, the UI's index, ``autolog sync``) apply
the events in order. See ``docs/format.md``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .codec import dumps_line
from .files import JOURNAL, note_changed
from .reader import lock_is_held
from .writer import ends_with_newline

__all__ = ["EDIT_KINDS", "append_event", "append_events", "edit_events"]

#: the journal event types that edit a run after the fact (``tags`` is also a logging event)
EDIT_KINDS = ("rename", "untag", "note", "delete", "restore")


def append_event(run_dir: Path, record: dict[str, Any]) -> int:
    """Append ``record`` as one journal line; returns the journal's size after it."""
    return append_events(run_dir, [record])


def append_events(run_dir: Path, records: list[dict[str, Any]]) -> int:
    """Append ``records``, one line each, with one write; returns the journal's size after.

    A last line left without its newline (a writer killed mid-line) gets one first, in the same
    write, so the torn line stays on its own and these parse. Only when no process runs the run:
    a live writer appends whole lines (and mends a torn one when it opens the journal), and a
    look at the last byte while it writes could see a line still arriving.
    """
    journal = Path(run_dir) / JOURNAL
    line = "".join(dumps_line(r) + "\n" for r in records).encode("utf-8")
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND)  # no O_CREAT: only an existing run
    try:
        size = os.fstat(fd).st_size
        if size and not lock_is_held(Path(run_dir), None) and not ends_with_newline(journal):
            line = b"\n" + line
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    note_changed(Path(run_dir))
    return size


def edit_events(*, name: str | None = None, tags: dict[str, str] | None = None,
                remove_tags: list[str] | None = None, note: str | None = None,
                deleted: bool | None = None, now: int | None = None) -> list[dict[str, Any]]:
    """The journal events for a set of changes (any of them may be left out), in the order a
    reader applies them: removed tags before set ones, so a key in both ends up set."""
    when = int(time.time() * 1000) if now is None else now
    events: list[dict[str, Any]] = []
    if name is not None:
        events.append({"t": "rename", "name": name, "time": when})
    removed = [k for k in remove_tags or () if k not in (tags or {})]
    if removed:
        events.append({"t": "untag", "keys": removed, "time": when})
    if tags:
        events.append({"t": "tags", "d": dict(tags)})
    if note is not None:
        events.append({"t": "note", "text": note, "time": when})
    if deleted is not None:
        events.append({"t": "delete" if deleted else "restore", "time": when})
    return events
