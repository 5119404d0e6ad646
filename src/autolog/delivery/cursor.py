"""Where delivery of one run to one backend stands: ``delivery/<key>.json`` in the run's directory.

The cursor holds the byte offset of the first journal line the backend has not acknowledged, the
end of a batch sent but not acknowledged (``inflight``: it is resent with the same range), whether
the run's end was delivered, and the backend's own small state (its remote run id). It is saved
after every acknowledged call. A ``flock`` on ``delivery/<key>.lock`` keeps two processes from
delivering one run to one backend at the same time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..journal.codec import encode_line
from ..journal.files import DELIVERY, JOURNAL, FileLock, atomic_write, read_json

__all__ = ["Cursor", "DeliveryBusy"]


class DeliveryBusy(Exception):
    """Another process is delivering this run to this backend right now."""


def _safe_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:120]


class Cursor:
    """One (run, backend) pair's delivery position, read from disk."""

    def __init__(self, run_dir: Path, key: str):
        self.key = _safe_key(key)
        self.dir = run_dir / DELIVERY
        self.path = self.dir / f"{self.key}.json"
        data = read_json(self.path)
        self.offset: int = data.get("offset", 0)
        self.done: bool = data.get("done", False)
        self.state: dict[str, Any] = data.get("state", {})
        #: end offset of a batch sent but not acknowledged: it is resent with the same range
        self.inflight: int | None = data.get("inflight")
        #: the ``(status, time)`` delivered as the run's end (for edits appended after it)
        ended = data.get("ended")
        self.ended: tuple[str, int] | None = (str(ended[0]), int(ended[1])) if ended else None

    def save(self) -> None:
        self.dir.mkdir(exist_ok=True)
        data: dict[str, Any] = {"offset": self.offset, "done": self.done,
                                "inflight": self.inflight, "state": self.state}
        if self.ended is not None:
            data["ended"] = list(self.ended)
        atomic_write(self.path, encode_line(data))

    def behind(self, run_dir: Path) -> bool:
        """Are there journal bytes past the cursor (after the end: edits made later)?"""
        try:
            return (run_dir / JOURNAL).stat().st_size > self.offset
        except OSError:
            return False

    def lock(self) -> _Held:
        """Hold the delivery lock of this pair for a ``with`` block, or raise DeliveryBusy."""
        self.dir.mkdir(exist_ok=True)
        return _Held(FileLock(self.dir / f"{self.key}.lock"))


class _Held:
    def __init__(self, lock: FileLock):
        self.lock = lock

    def __enter__(self) -> _Held:
        if not self.lock.acquire():
            self.lock.release()
            raise DeliveryBusy(str(self.lock.path.parent.parent))
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
