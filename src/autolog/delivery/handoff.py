"""The detached delivery process: what a training process has not delivered when it exits is
delivered by a process of its own, so the user never waits for a backend.

The exiting process appends its run ids to a queue file in the store and starts, unless one is
running already, ``python -m autolog.delivery`` (:func:`main`): a new session (it outlives the
script and its terminal), its output in a log file, stdin closed, nothing inherited but the
environment with the settings in force. It runs the same code as ``autolog sync``
(:mod:`.sync`) until everything queued is delivered or its time bound passes, then exits; what
is left stays in the journal for ``autolog sync``.

One process per store and set of destinations: it holds ``<store>/.delivery/<id>.lock``
(``flock``; the kernel frees it however the process ends) and describes itself in
``<id>.json``. A process that finds the lock held leaves its runs to the holder, which looks at
the queue once more after letting go of the lock, so no run handed over is ever left behind.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..config import current
from ..journal.files import FileLock, atomic_write, is_locked, read_json
from ..plugins import get_plugins
from .sync import Summary, Sync, plan

__all__ = ["Handoff", "main", "running"]

log = logging.getLogger("autolog")

FOLDER = ".delivery"
MAX_PAUSE = 30.0  # seconds between passes while a backend is down


class Handoff:
    """The files of one delivery process: ``<store>/.delivery/<id>.{lock,json,runs,log}``.

    ``backends`` maps each backend name to its destination's cursor key; the id is a digest of
    them, so processes delivering the same store to the same destinations are one.
    """

    def __init__(self, store: Path, backends: Mapping[str, str]):
        self.store = store
        import hashlib  # loaded at the first hand-off, not at ``import autolog``

        self.backends = dict(sorted(backends.items()))
        text = ",".join(f"{name}={key}" for name, key in self.backends.items())
        self.id = hashlib.sha256(text.encode()).hexdigest()[:12]
        folder = store / FOLDER
        self.lock_path = folder / f"{self.id}.lock"
        self.status_path = folder / f"{self.id}.json"
        self.queue_path = folder / f"{self.id}.runs"
        self.log_path = folder / f"{self.id}.log"

    def enqueue(self, run_ids: Sequence[str]) -> None:
        """Add runs to the queue (one write, under the queue's ``flock``: a compaction by the
        delivery process never loses it)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.queue_path) as fd:
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, "".join(f"{run_id}\n" for run_id in run_ids).encode())

    def queued(self) -> list[Path]:
        """The queued runs' directories, each once, in the order they were queued."""
        try:
            ids = self.queue_path.read_text(encoding="utf-8").split()
        except OSError:
            return []
        return [self.store / run_id for run_id in dict.fromkeys(ids) if _is_id(run_id)]

    def compact(self, keep: set[str]) -> None:
        """Leave in the queue only the runs in ``keep`` (and any queued meanwhile)."""
        if not self.queue_path.exists():
            return
        with _locked(self.queue_path) as fd:
            size = os.fstat(fd).st_size
            ids = [i for i in dict.fromkeys(os.pread(fd, size, 0).decode().split()) if i in keep]
            data = "".join(f"{i}\n" for i in ids).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)

    def is_running(self) -> bool:
        return bool(is_locked(self.lock_path))

    def start(self, timeout: float, env: Mapping[str, str]) -> int | None:
        """Start the delivery process unless one holds the lock; its pid, or None."""
        if self.is_running():
            return None  # it looks at the queue again before it exits
        import subprocess  # loaded at the first hand-off, not at ``import autolog``

        command = [sys.executable, "-m", "autolog.delivery", "--store", str(self.store),
                   "--timeout", repr(timeout), "--after", str(os.getpid())]
        for name, key in self.backends.items():
            command += ["--backend", f"{name}={key}"]
        with open(os.devnull, "rb") as stdin, open(self.log_path, "ab") as out:
            process = subprocess.Popen(command, stdin=stdin, stdout=out, stderr=out,
                                       env=dict(env), cwd=os.getcwd(), close_fds=True,
                                       start_new_session=True)
        return process.pid


def running(store: Path) -> list[dict[str, Any]]:
    """The delivery processes running for ``store``: pid, started, deadline, backends."""
    folder = store / FOLDER
    found = []
    for status in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        if is_locked(status.with_suffix(".lock")):
            data = read_json(status)
            if data:
                found.append(data)
    return found


@contextmanager
def _locked(path: Path) -> Iterator[int]:
    """``path`` opened for writing, under an exclusive ``flock`` (waited for: held briefly)."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _is_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


# -- the process ----------------------------------------------------------------------------


class _Deliverer:
    """The loop of the delivery process: passes over the queue until it is all delivered, or
    the deadline; a pause that doubles between passes while a backend fails."""

    def __init__(self, handoff: Handoff, deadline: float):
        self.handoff = handoff
        self.deadline = deadline
        self.sync = Sync(_make_backend)
        self.keys = self._check_keys()
        self.pause = 0.25
        self._said = ""
        #: a pass ended with a call still in flight (the deadline passed during it)
        self.abandoned = False

    def _check_keys(self) -> dict[str, str | None]:
        """The handed destinations this process reaches too; a backend whose destination
        differs here (another tracking URI) is left for ``autolog sync``."""
        keys = self.sync.keys(self.handoff.backends)
        for name, key in keys.items():
            if key is None:
                log.warning("autolog: the %s backend cannot be used here: %s", name,
                            self.sync.breaker(name).cause)
            elif key != self.handoff.backends[name]:
                log.warning("autolog: the %s destination differs in the delivery process (%s, "
                            "not %s); left for `autolog sync`", name, key,
                            self.handoff.backends[name])
                keys[name] = None
        return {name: key for name, key in keys.items() if key is not None}

    def run(self, lock: FileLock) -> None:
        while time.monotonic() < self.deadline:
            jobs = self._jobs()
            if not jobs:
                left = plan(self.handoff.queued(), self.keys)  # live runs, broken backends
                self.handoff.compact({job.run_id for job in left})
                lock.release()  # then look once more: a run queued while we held the lock
                if not self._jobs() or not lock.acquire():
                    return
                continue
            summary = self.sync.run(jobs, self.deadline)
            self.abandoned = summary.timed_out
            self._report(summary)
            self._rest(summary)

    def _jobs(self) -> list[Any]:
        jobs = plan(self.handoff.queued(), self.keys, finished_only=True)
        return [job for job in jobs if not self.sync.breaker(job.backend).permanent]

    def _report(self, summary: Summary) -> None:
        """The pass's summary in the log, unless it says what the last one said."""
        text = summary.text()
        if summary.delivered() or text != self._said:
            log.info("%s", text)
        self._said = text

    def _rest(self, summary: Summary) -> None:
        """Transient failures, and a pass that moved nothing, wait, doubling up to MAX_PAUSE;
        busy runs (the exiting process still holds them) a moment; then every breaker that is
        not permanent closes again."""
        failed = any(r.status in ("failed", "skipped") for r in summary.results)
        busy = any(r.status == "busy" for r in summary.results)
        stuck = not any(r.delivered for r in summary.results)  # e.g. a journal with no start
        if failed or (stuck and not busy):
            wait = self.pause * random.uniform(0.75, 1.25)
            self.pause = min(MAX_PAUSE, self.pause * 2)
        else:
            wait, self.pause = (0.1 if busy else 0.0), 0.25
        time.sleep(max(0.0, min(wait, self.deadline - time.monotonic())))
        for name, breaker in list(self.sync.breakers.items()):
            if not breaker.permanent:
                self.sync.breakers[name] = type(breaker)()


def _make_backend(name: str) -> Any:
    settings = current().replace(backend=name)
    classes = get_plugins(settings).backends([name])
    if name not in classes:
        raise LookupError(f"no backend {name!r} is installed here")
    return classes[name](settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Deliver the queue of one store to the destinations given; the exit code is 0."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m autolog.delivery",
                                     description="deliver what a training process left")
    parser.add_argument("--store", required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--backend", action="append", default=[], metavar="NAME=KEY")
    parser.add_argument("--after", type=int, metavar="PID",
                        help="the process that started this one, whose exit is waited for "
                             "first (see __main__)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s [{os.getpid()}] %(message)s")
    handoff = Handoff(Path(args.store), dict(b.split("=", 1) for b in args.backend))
    lock = FileLock(handoff.lock_path)
    if not lock.acquire():
        lock.release()
        return 0  # another process delivers this store to these destinations
    started = time.time()
    atomic_write(handoff.status_path, json.dumps({
        "pid": os.getpid(), "started": started, "deadline": started + args.timeout,
        "backends": sorted(handoff.backends), "log": str(handoff.log_path)}))
    deliverer = _Deliverer(handoff, time.monotonic() + args.timeout)
    try:
        deliverer.run(lock)
    finally:
        lock.release()
    if deliverer.abandoned:  # a call still in flight must not hold the exit
        logging.shutdown()
        os._exit(0)
    deliverer.sync.close()
    return 0

