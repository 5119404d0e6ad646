"""Helpers for testing autolog and its plugins: a recording backend and a clean slate.

``RecordingBackend`` is a real :class:`~autolog.backends.base.Backend` that keeps what it receives
in memory, for plugin tests that want to see exactly what a backend is sent::

    from autolog.testing import RecordingBackend, registered, reset

    with registered(RecordingBackend):
        autolog.enable(backend="local,recording")
        ...
        autolog.flush()
        assert RecordingBackend.runs[run.id].metrics["loss"] == [...]
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from ._runtime import runtime
from .delivery.contract import Backend, Batch, Media, RunRef
from .hookspecs import hookimpl
from .plugins import get_plugins

__all__ = ["RecordedRun", "RecordingBackend", "registered", "reset"]


class RecordedRun:
    def __init__(self, ref: RunRef):
        self.id = ref.id
        self.name = ref.name
        self.project = ref.project
        self.parent_id = ref.parent_id
        self.params: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        self.metrics: dict[str, list[tuple[int, float]]] = {}
        self.artifacts: dict[str, bytes | None] = {}  # name -> file content (None: a directory)
        self.models: dict[str, dict[str, Any]] = {}
        self.media: list[Media] = []
        self.status: str | None = None
        self.end_time: int | None = None
        self.start_calls = 0


class RecordingBackend(Backend):
    """Keeps every run it receives in ``RecordingBackend.runs`` (shared by all instances)."""

    name = "recording"
    runs: ClassVar[dict[str, RecordedRun]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def start_run(self, run: RunRef) -> None:
        with self.lock:
            recorded = self.runs.setdefault(run.id, RecordedRun(run))
            recorded.start_calls += 1

    def log_batch(self, run: RunRef, batch: Batch) -> None:
        with self.lock:
            recorded = self.runs[run.id]
            recorded.params.update(batch.params)
            recorded.tags.update(batch.tags)
            for m in batch.metrics:
                recorded.metrics.setdefault(m.key, []).append((m.step, m.value))

    def log_artifact(self, run: RunRef, local_path: Path, name: str) -> None:
        content = local_path.read_bytes() if local_path.is_file() else None
        with self.lock:
            self.runs[run.id].artifacts[name] = content

    def log_model(self, run: RunRef, local_path: Path, name: str, spec: dict[str, Any]) -> None:
        with self.lock:
            self.runs[run.id].models[name] = spec

    def log_media(self, run: RunRef, media: Media) -> None:
        with self.lock:
            self.runs[run.id].media.append(media)

    def end_run(self, run: RunRef, status: str, end_time: int) -> None:
        with self.lock:
            self.runs[run.id].status = status
            self.runs[run.id].end_time = end_time

    @classmethod
    def clear(cls) -> None:
        with cls.lock:
            cls.runs.clear()


class _BackendPlugin:
    def __init__(self, *classes: type[Backend]):
        self.classes = classes

    @hookimpl
    def autolog_register_backends(self, register: Any) -> None:
        for cls in self.classes:
            register(cls)


@contextmanager
def registered(*backend_classes: type[Backend]) -> Iterator[None]:
    """Register backend classes as a plugin for the duration of the block."""
    plugin = _BackendPlugin(*backend_classes)
    plugins = get_plugins()
    plugins.register(plugin, name=f"testing-{id(plugin)}")
    try:
        yield
    finally:
        plugins.unregister(plugin)


def reset() -> None:
    """End every run, stop the writer and the workers, forget settings, patches and plugins
    (between tests): the runtime's own reset."""
    runtime.reset()
