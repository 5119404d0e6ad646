"""Hardware monitoring: the :class:`Sampler` base class and the monitor thread that drives them.

One daemon thread per process samples for every top-level run that is active. It builds every
registered sampler once (``enable()``'s warm-up does it before any training), logs their static
facts as tags of each run, and every ``AUTOLOG_SYSTEM_INTERVAL`` seconds logs what they sample as
metrics under ``system/`` (step = the run's sample number). A sampler that cannot work here
raises :class:`SamplerUnavailable` from its constructor and is left out quietly; one that fails
while sampling loses that sample, not the thread. Every run gets at least one sample, however
short. Starting a run starts no thread and builds nothing: a scikit-learn fit of a few
milliseconds does not share them with the samplers. The thread waits while no run samples and
never keeps the process alive.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, ClassVar

from .._runtime import runtime, start_thread
from ..config import current
from ..report import internal_error

if TYPE_CHECKING:
    from ..config import Settings
    from ..plugins import Plugins
    from ..run import Run

__all__ = ["Monitor", "Sampler", "SamplerUnavailable", "start_monitor", "warm"]

PREFIX = "system/"


class SamplerUnavailable(Exception):
    """Raised by a sampler's constructor when it cannot work on this machine (and why)."""


class Sampler:
    """One source of hardware metrics. Subclass, set ``name``, implement ``sample``."""

    name: ClassVar[str] = ""
    #: the keys of ``sample()`` that are averages since the previous reading (a run's first
    #: sample leaves them out: their window began before the run)
    rates: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, settings: Settings):
        self.settings = settings

    @classmethod
    def warm(cls) -> None:
        """Import what the sampler needs, ahead of the first run (``enable()`` calls it on a
        background thread, so that the first training does not compete with the imports)."""

    def static_tags(self) -> dict[str, str]:
        """Facts that do not change during the run (model names, totals), logged once as tags."""
        return {}

    def sample(self) -> dict[str, float]:
        """Current readings, keyed without the ``system/`` prefix (``cpu_percent``)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the sampler holds (an NVML handle)."""


#: the most a run's end (or the monitor's close) waits for a sampler busy elsewhere (a hung call)
END_WAIT = 2.0


class _Sampled:
    """One run's place in the monitor's schedule."""

    __slots__ = ("due", "interval", "removed", "step")

    def __init__(self, due: float, interval: float):
        self.due, self.interval = due, interval
        self.step = 0  # the run's next sample number
        self.removed = False  # the run ended: nothing more is logged into it


class Monitor:
    """The process's sampling thread, for every top-level run that samples.

    Its samplers are built once, by the first reading or by :meth:`build`, and read for every
    run: the rates (CPU percentages, bytes per second) are averages since the previous reading,
    whichever run it was for, and a run's first sample leaves them out (their window began
    before the run). ``settings`` are those the samplers are built with: the ones in force when
    the process's monitor was made (a sampler reads its settings once, as it is built).
    """

    def __init__(self, sampler_classes: list[type[Sampler]], settings: Settings):
        self.classes = tuple(sampler_classes)
        self.settings = settings
        self.unavailable: dict[str, str] = {}
        self._samplers: list[Sampler] | None = None  # built at the first reading
        self._tags: dict[str, str] = {}
        self._rates: frozenset[str] = frozenset()
        self._runs: dict[Run, _Sampled] = {}
        self._runs_lock = threading.Lock()  # the schedule: never held while sampling
        self._read_lock = threading.Lock()  # the samplers: one reading at a time
        self._wake = threading.Event()
        self._closed = False
        self._retired = False  # replaced (new samplers): closes when its last run ends
        self._thread = start_thread(self._loop, "autolog-system")

    def serves(self, sampler_classes: list[type[Sampler]]) -> bool:
        return not self._closed and not self._retired and self.classes == tuple(sampler_classes)

    def build(self) -> None:
        """Build the samplers now (``enable()`` calls it on its warm-up thread)."""
        with self._read_lock:
            if self._samplers is None:
                self._build()

    def add(self, run: Run) -> None:
        """Sample ``run`` from now (the thread's next reading) until :meth:`remove`."""
        with self._runs_lock:
            self._runs[run] = _Sampled(time.monotonic(), run.settings.system_interval)
        self._wake.set()

    def remove(self, run: Run) -> None:
        """At the run's end: its sample now if the thread had not taken one yet (a run of a few
        milliseconds), and no more after."""
        with self._runs_lock:
            state = self._runs.pop(run, None)
            close = self._retired and not self._runs
        if state is not None:
            if self._read_lock.acquire(timeout=END_WAIT):
                try:
                    if not state.step and not state.removed:
                        self._sample_into([(run, state)], time.monotonic())
                    state.removed = True
                finally:
                    self._read_lock.release()
            else:  # a sampler hangs: the run ends without its sample
                state.removed = True
        if close:
            self.close()

    def retire(self) -> None:
        """Replaced by a monitor of other samplers: close once no run samples here."""
        with self._runs_lock:
            self._retired = True
            idle = not self._runs
        if idle:
            self.close()

    def close(self) -> None:
        """Stop the thread and release the samplers (an NVML handle)."""
        self._closed = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(END_WAIT)
        if not self._read_lock.acquire(timeout=END_WAIT):
            return
        try:
            samplers, self._samplers = self._samplers or [], []
        finally:
            self._read_lock.release()
        for sampler in samplers:
            try:
                sampler.close()
            except Exception as exc:
                internal_error(f"closing sampler {sampler.name}", exc)

    def forked(self) -> None:
        """In a forked child: inert (its locks may have been held by the parent's thread)."""
        self._runs_lock, self._read_lock = threading.Lock(), threading.Lock()
        self._runs.clear()
        self._samplers, self._closed = [], True

    def _loop(self) -> None:
        while not self._closed:
            self._wake.clear()  # before the look: an add() after it wakes the wait below
            now = time.monotonic()
            with self._runs_lock:
                due = [(run, state) for run, state in self._runs.items() if state.due <= now]
                upcoming = min((state.due for state in self._runs.values()), default=None)
            if not due:
                self._wake.wait(None if upcoming is None else upcoming - now)
                continue
            with self._read_lock:
                if self._closed:
                    continue
                try:
                    self._sample_into(due, now)
                except Exception as exc:  # the thread serves every run: it must not die
                    internal_error("sampling hardware usage", exc)
                    for _, state in due:  # not again at once
                        state.due = now + state.interval

    def _sample_into(self, due: list[tuple[Run, _Sampled]], now: float) -> None:
        """One reading, logged into each of ``due``'s runs (caller holds the read lock)."""
        if self._samplers is None:
            self._build()
        metrics = self._read()
        for run, state in due:
            if state.removed:
                continue
            if state.step:
                values = metrics
            else:
                values = {k: v for k, v in metrics.items() if k not in self._rates}
                if self._tags:
                    run.set_tags(self._tags)
            if values:
                run.log_metrics(values, step=state.step)
            state.step += 1
            state.due = max(state.due + state.interval, now)

    def _build(self) -> None:
        samplers: list[Sampler] = []
        tags: dict[str, str] = {}
        rates: set[str] = set()
        for cls in self.classes:
            try:
                sampler = cls(self.settings)
                tags.update(sampler.static_tags())
            except SamplerUnavailable as why:
                self.unavailable[cls.name] = str(why)
                continue
            except Exception as exc:
                internal_error(f"starting sampler {cls.name}", exc)
                continue
            samplers.append(sampler)
            rates.update(PREFIX + key for key in cls.rates)
        self._samplers, self._tags, self._rates = samplers, tags, frozenset(rates)

    def _read(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for sampler in self._samplers or ():
            try:
                readings = sampler.sample()
            except Exception as exc:
                internal_error(f"sampler {sampler.name}", exc)
                continue
            for key, value in readings.items():
                metrics[PREFIX + key] = value
        return metrics


def warm(plugins: Plugins) -> None:
    """Load the samplers and what they import, and build them, before any training (see
    ``Sampler.warm``): the first run then only joins the process's monitor."""
    classes = plugins.samplers()
    for cls in classes:
        try:
            cls.warm()
        except Exception:
            pass  # the sampler says why at the run's start
    if classes:
        process_monitor(classes, current()).build()


def start_monitor(run: Run, plugins: Plugins) -> Monitor | None:
    """Sample ``run`` if any sampler is registered; the run's end stops it."""
    classes = plugins.samplers()
    if not classes:
        return None
    monitor = process_monitor(classes, run.settings)
    monitor.add(run)
    run._on_end.append(lambda: monitor.remove(run))
    return monitor


def process_monitor(sampler_classes: list[type[Sampler]], settings: Settings) -> Monitor:
    """The process's monitor for these samplers: one per process, kept when ``enable()`` is
    called again (a benchmark alternating ``log_models``, a notebook), made anew when the
    samplers change (a sampler plugin registered since); ``settings`` build a new one."""
    with runtime.lock:
        monitor = runtime.monitor
        if monitor is not None and monitor.serves(sampler_classes):
            return monitor
        if monitor is not None:
            monitor.retire()
        monitor = runtime.monitor = Monitor(sampler_classes, settings)
        return monitor


def _after_fork_in_child() -> None:
    """The thread did not survive the fork, and the samplers read the parent: a forked child
    (a DataLoader worker) samples nothing; a run it starts of its own gets a monitor of its
    own."""
    monitor, runtime.monitor = runtime.monitor, None
    if monitor is not None:
        monitor.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
