"""A run directory's layout, and the file primitives the journal and delivery share.

A run is a directory ``<AUTOLOG_DIR>/<run id>/`` holding (see ``docs/format.md``):

- ``events.jsonl``: the journal, one JSON object per line, appended only; the source of truth;
- ``meta.json``: a summary rewritten at start and end, so listing runs needs no journal scan;
- ``artifacts/``: files logged with the run (models under ``artifacts/<name>/``, media under
  ``artifacts/media/``, the console under ``artifacts/console.log``);
- ``run.lock``: held (``flock``) by the process that runs it; free with no end event = CRASHED;
- ``delivery/``: one cursor per remote backend (see :mod:`autolog.delivery`).

Beside the runs, ``<AUTOLOG_DIR>/.changed`` lists (one id a line) runs whose journal grew after
they ended: an edit, a resume. Readers that cache the store (the index of ``autolog ui`` and
the CLI) read and remove it, so they need not look at every ended run's journal to see those.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

try:  # POSIX; elsewhere liveness falls back to the pid in meta.json
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ARTIFACTS", "CHANGED", "DELIVERY", "FORMAT_VERSION", "JOURNAL", "LOCK", "META",
           "FileLock", "atomic_write", "is_locked", "note_changed", "read_json", "take_changed",
           "tell_launcher"]

FORMAT_VERSION = 2  # 2: media events (version 1 journals read as they are)
JOURNAL = "events.jsonl"
META = "meta.json"
LOCK = "run.lock"
ARTIFACTS = "artifacts"
DELIVERY = "delivery"
CHANGED = ".changed"


def atomic_write(path: Path, content: str | bytes) -> None:
    """Replace ``path`` atomically: a reader sees the old content or the new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)


def note_changed(run_dir: Path) -> None:
    """Tell the store's caches that this run's journal grew after its end (one ``O_APPEND``
    write: safe from any number of processes at once)."""
    line = f"{run_dir.name}\n".encode()
    try:
        fd = os.open(run_dir.parent / CHANGED, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:  # a read-only store: a cache sees the change at its next full pass
        return
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def tell_launcher(run_dir: Path, ended: bool = False) -> None:
    """Under ``autolog run``: tell the launcher that the run at ``run_dir`` starts (or resumes),
    before its directory is written, so a kill right after cannot leave a run the launcher does
    not know of; or that its end is on disk (``ended``), so the launcher need not read it. One
    line appended to the file the launcher named in ``AUTOLOG_LAUNCH_RUNS``: the directory, or
    ``end``, a tab and the directory."""
    runs_file = os.environ.get("AUTOLOG_LAUNCH_RUNS")
    if not runs_file:
        return
    try:  # no O_CREAT: a launcher that is gone is not served
        handle = os.open(runs_file, os.O_WRONLY | os.O_APPEND)
    except OSError:
        return
    try:
        os.write(handle, os.fsencode(("end\t" if ended else "") + f"{run_dir}\n"))
    except OSError:
        pass
    finally:
        os.close(handle)


def take_changed(root: Path) -> set[str]:
    """The run ids noted by :func:`note_changed` since the last call (the list is removed)."""
    taken = root / f"{CHANGED}.{os.getpid()}"
    try:
        os.replace(root / CHANGED, taken)
    except OSError:
        return set()
    try:
        return {line for line in taken.read_text("utf-8", "replace").split() if line}
    finally:
        taken.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``{}`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class FileLock:
    """An exclusive ``flock`` on ``path``, taken without waiting; the kernel frees it however
    the holding process ends."""

    def __init__(self, path: Path):
        self.path = path
        self._fd = -1

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it (the file stays open anyway, so
        a run whose lock is held elsewhere still keeps it alive while this process runs)."""
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:  # pragma: no cover - Windows
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def is_locked(path: Path) -> bool | None:
    """Does a process hold an exclusive lock on ``path``? None where locks cannot be asked."""
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return False
