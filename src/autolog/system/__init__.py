"""Hardware monitoring: the :class:`Sampler` base class and the monitor thread that drives them.

While a top-level run is active, one daemon thread per run builds every registered sampler, logs
their static facts as tags, and every ``AUTOLOG_SYSTEM_INTERVAL`` seconds logs what they sample as
metrics under ``system/`` (step = sample number). A sampler that cannot work here raises
:class:`SamplerUnavailable` from its constructor and is left out quietly; one that fails while
sampling loses that sample, not the thread. Every run gets at least one sample, however short.
The thread ends with the run and never keeps the process alive.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, ClassVar

from .._runtime import start_thread
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


class Monitor:
    """The sampling thread of one run."""

    def __init__(self, run: Run, sampler_classes: list[type[Sampler]], interval: float):
        self.run = run
        self.interval = interval
        self.unavailable: dict[str, str] = {}
        self._classes = sampler_classes
        self._stop = threading.Event()
        self._thread = start_thread(self._loop, "autolog-system")

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        samplers = self._build()
        step = 0
        next_at = time.monotonic()
        try:
            while True:  # at least one sample, however short the run
                self._sample(samplers, step)
                step += 1
                next_at += self.interval
                if self._stop.wait(max(0.0, next_at - time.monotonic())):
                    break
        finally:
            for sampler in samplers:
                try:
                    sampler.close()
                except Exception as exc:
                    internal_error(f"closing sampler {sampler.name}", exc)

    def _build(self) -> list[Sampler]:
        samplers, tags = [], {}
        for cls in self._classes:
            try:
                sampler = cls(self.run.settings)
                tags.update(sampler.static_tags())
            except SamplerUnavailable as why:
                self.unavailable[cls.name] = str(why)
                continue
            except Exception as exc:
                internal_error(f"starting sampler {cls.name}", exc)
                continue
            samplers.append(sampler)
        if tags:
            self.run.set_tags(tags)
        return samplers

    def _sample(self, samplers: list[Sampler], step: int) -> None:
        metrics: dict[str, float] = {}
        for sampler in samplers:
            try:
                readings = sampler.sample()
            except Exception as exc:
                internal_error(f"sampler {sampler.name}", exc)
                continue
            for key, value in readings.items():
                metrics[PREFIX + key] = value
        if metrics:
            self.run.log_metrics(metrics, step=step)


def warm(plugins: Plugins) -> None:
    """Load the samplers and what they import, before any training (see ``Sampler.warm``)."""
    for cls in plugins.samplers():
        try:
            cls.warm()
        except Exception:
            pass  # the sampler says why at the run's start


def start_monitor(run: Run, plugins: Plugins) -> Monitor | None:
    """Start sampling for ``run`` if any sampler is registered; the run's end stops it."""
    classes = plugins.samplers()
    if not classes:
        return None
    monitor = Monitor(run, classes, run.settings.system_interval)
    run._on_end.append(monitor.stop)
    return monitor
