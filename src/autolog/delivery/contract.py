"""The contract between delivery and a backend: :class:`Backend`, and what it is handed.

Plugin authors import these from :mod:`autolog.backends.base`, their public home.

Like Lightning's ``Logger``, the required methods are abstract and the optional ones no-ops, so a
new backend is one module filling in ``start_run``, ``log_batch`` and ``end_run`` (and
``log_artifact`` / ``log_model`` when it stores files; ``log_media`` when it shows images,
histograms, tables or texts itself: by default a media item's files are sent as artifacts).
Backends are called on their own worker thread, never on the training thread, with events read
back from the run's journal: a method that raises is retried later with the same data, so each
must be safe to call again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..journal.reader import RunHeader
from .cursor import Cursor

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Backend", "BackendUnavailable", "Batch", "Media", "Metric", "RejectedBatch",
           "RunRef"]


class RejectedBatch(Exception):
    """Raised by ``log_batch`` when the destination will never accept this batch (a key it
    refuses, a value over a hard limit). Delivery skips the batch with one warning instead of
    retrying it forever and holding up the rest of the run; the journal still has it."""


class BackendUnavailable(Exception):
    """A permanent misconfiguration (its SDK is not installed, its credentials are refused, its
    URL is wrong): delivery reports it once, with this message (say the fix), and stops trying
    this backend in this process; the journal keeps everything for ``autolog sync``."""


class Metric(NamedTuple):
    key: str
    value: float
    step: int
    timestamp: int  # milliseconds since the epoch


class Media(NamedTuple):
    """One media item of a run (a ``media`` journal event, see ``docs/format.md``).

    ``kind`` is ``image`` (a PNG, or the image file logged), ``histogram`` (JSON
    ``{"counts", "edges"}``), ``table`` (JSON ``{"columns", "data"}``), ``text`` (UTF-8) or
    ``plot`` (an evaluation plot: its data as JSON, and ``image``, its PNG drawing; None in a
    journal an older autolog wrote without Pillow). ``name`` is the file's name under the run's
    artifacts (``media/...``), ``path`` the local file; ``meta`` holds what the event says of
    it (width, bins, rows, plot type...).
    """

    kind: str
    key: str
    step: int
    timestamp: int  # milliseconds since the epoch
    name: str
    path: Path
    meta: dict[str, Any]
    image_name: str | None = None
    image: Path | None = None

    @classmethod
    def from_event(cls, record: dict[str, Any], artifacts: Path) -> Media:
        image = record.get("image")
        return cls(record["kind"], record["key"], int(record["step"]), int(record["time"]),
                   record["path"], artifacts / record["path"], record.get("meta") or {},
                   image, artifacts / image if image else None)

    def files(self) -> list[tuple[str, Path]]:
        """``(name, local path)`` of each of its files: the item's, then its drawing's."""
        found = [(self.name, self.path)]
        if self.image_name is not None and self.image is not None:
            found.append((self.image_name, self.image))
        return found


class Batch:
    """Consecutive params, tags and metrics of one run, in journal order."""

    __slots__ = ("journal_range", "metrics", "params", "tags")

    def __init__(self, start_offset: int = 0) -> None:
        self.params: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        self.metrics: list[Metric] = []
        #: the journal bytes ``[start, end)`` this batch holds. A batch that failed is retried
        #: with exactly the same range (even from ``autolog sync`` in another process), so
        #: ``(run id, start, end)`` is an idempotency key a remote store can deduplicate on.
        self.journal_range = (start_offset, start_offset)

    def __bool__(self) -> bool:
        return bool(self.params or self.tags or self.metrics)

    def __len__(self) -> int:
        return len(self.params) + len(self.tags) + len(self.metrics)

    def __repr__(self) -> str:
        return (f"Batch(params={len(self.params)}, tags={len(self.tags)}, "
                f"metrics={len(self.metrics)})")

    def metric_columns(self) -> Iterator[tuple[str, list[Metric]]]:
        """The metrics grouped by key, each group in logging order."""
        groups: dict[str, list[Metric]] = {}
        for m in self.metrics:
            groups.setdefault(m.key, []).append(m)
        yield from groups.items()


class RunRef(RunHeader):
    """The run a backend is asked to record, as its start event describes it.

    ``state`` is this backend's own small, persisted notebook for the run (the remote run id,
    what it has already seen): it is saved with the delivery cursor after every successful call,
    so a later ``autolog sync`` resumes the same remote run. Changes made during a call that
    raises are discarded: the state is read again from disk before the retry.
    """

    def __init__(self, path: Path, start: dict[str, Any], state: dict[str, Any], key: str):
        super().__init__(path, start)
        self.start = start
        self.state = state
        self._key = key
        #: ``(status, end time)`` when the run's end was delivered before and this delivery only
        #: carries later edits (a backend that must reopen a run to edit it closes it so)
        self.ended: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return f"RunRef({self.id}, {self.name!r})"

    @property
    def parent_dir(self) -> Path | None:
        return self.path.parent / self.parent_id if self.parent_id else None

    def parent_state(self) -> dict[str, Any]:
        """This backend's state for the parent run (its remote id, once delivered), or {}."""
        parent = self.parent_dir
        return {} if parent is None else Cursor(parent, self._key).state


class Backend(ABC):
    """A destination for runs. Subclass, set ``name``, and register it from a plugin."""

    #: the name used in ``AUTOLOG_BACKEND``
    name: ClassVar[str] = ""
    #: distributions whose installed version ``autolog doctor`` reports (the SDK)
    distributions: ClassVar[tuple[str, ...]] = ()
    #: it loads a tracker's SDK to deliver (hundreds of ms of imports, on the GIL the training
    #: needs): its worker waits out ``AUTOLOG_DELIVERY_DELAY``, so that a short script never
    #: loads it. False for a backend that writes with autolog's own code (it starts at once).
    loads_sdk: ClassVar[bool] = True
    #: ``AUTOLOG_*`` variables of its own (``enable()`` and ``autolog doctor`` warn about any
    #: other ``AUTOLOG_*`` name they do not know, as a typo)
    variables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings):
        self.settings = settings

    def cursor_key(self) -> str:
        """Names this destination in each run's ``delivery/`` directory.

        Two destinations of one backend (two MLflow servers) must have different keys, so that
        what one received says nothing about the other. Called on the training thread at every
        run start: keep it cheap (no SDK import, no I/O).
        """
        return self.name

    @abstractmethod
    def start_run(self, run: RunRef) -> None:
        """Create the run remotely, or find it again when ``run.state`` says it exists."""

    @abstractmethod
    def log_batch(self, run: RunRef, batch: Batch) -> None:
        """Record params, tags and metrics. Metric values may be NaN or infinite."""

    @abstractmethod
    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        """Mark the run ended: status is FINISHED, FAILED, KILLED, or CRASHED (its process died
        without ending it; sent by ``autolog sync`` once all it wrote is delivered)."""

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        """Store a file or directory logged under ``name`` (relative to the run's artifacts)."""

    def log_model(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any]) -> None:
        """Store a model saved under ``local_path``; ``spec`` says its flavor and format.

        The default stores it as an ordinary artifact directory.
        """
        self.log_artifact(run, local_path, name)

    # -- edits made after the fact (the UI's rename, untag, note, delete, restore) ----------------
    # Tags set by an edit arrive through ``log_batch`` like any tags. A backend without the
    # concept leaves these as they are: the edit stays in the local journal.

    def rename_run(self, run: RunRef, name: str) -> None:
        """The run was renamed."""

    def delete_tags(self, run: RunRef, keys: list[str]) -> None:
        """These tags were removed from the run."""

    def set_note(self, run: RunRef, text: str) -> None:
        """The run's free-text note is now ``text`` (empty: no note)."""

    def delete_run(self, run: RunRef) -> None:
        """The run was soft-deleted (it can be restored)."""

    def restore_run(self, run: RunRef) -> None:
        """A soft-deleted run was restored."""

    def resume_run(self, run: RunRef) -> None:
        """The run, ended before, was reopened (``autolog.start_run(run_id=...)``): it is
        running again; more of its history follows, then a new :meth:`end_run`."""

    def log_media(self, run: RunRef, media: Media) -> None:
        """Show a media item (an image, a histogram, a table, a text, an evaluation plot) the
        way this destination shows such things, at ``media.step``.

        The default stores the item's files as artifacts under their names
        (``media/<kind>/<key>/<step>.<ext>``), so a backend without the concept loses nothing.
        """
        for name, path in media.files():
            self.log_artifact(run, path, name)

    def close(self) -> None:
        """Release connections; called once, at exit or after ``autolog sync``."""
