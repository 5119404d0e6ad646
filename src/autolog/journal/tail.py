"""The journal tail: metric points on their way to the journal, in a shared file mapping.

``Run.log_metrics`` writes each point into a fixed-size slot of a ring that is a ``MAP_SHARED``
mapping of ``tail-<token>.ring`` in the run's directory: one ``struct.pack_into``, no system
call. The pages belong to the kernel's page cache, so a point is in the file the moment the call
returns, however the process dies next (SIGKILL, the OOM killer, ``os._exit`` in a forked
worker); only a machine crash can lose it. The journal writer consumes the ring in order and
appends the points to ``events.jsonl``; each metrics line it writes says which tail it came from
and the last sequence number it holds (``"tail"``, ``"seq"``), so the journal itself records
exactly what was consumed.

A slot is ``(step, value, timestamp_ms, key id, seq)``; ``seq`` counts from 1 per tail and is
written last, so a slot whose ``seq`` is the expected one is complete. Key ids are defined in
``tail-<token>.keys``, one JSON line ``[id, key]`` written (``write(2)``) before the first point
that uses it.

Each writing process has its own tail (a forked child makes a new one) and holds an exclusive
``flock`` on it; the keys file's first line names the process (pid, host). :func:`recover` takes
over tails whose process is gone (the lock is free, or held only by a child the dead process
left between fork and exec while its pid is gone): it appends the points the journal does not
hold yet, then deletes the tail. Readers, delivery, ``autolog sync`` and the run's own process
(for its forked children) call it.
"""

from __future__ import annotations

import itertools
import json
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._runtime import random_hex
from .codec import decode_line, encode_line, metrics_record
from .files import JOURNAL

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: tails are written, never taken over
    fcntl = None  # type: ignore[assignment]

__all__ = ["RING", "SLOT", "Tail", "covered_seq", "recover"]

SLOT = struct.Struct("<qdqIQ")  # step, value, timestamp ms, key id, seq (written last)
RING = 1 << 16  # slots: 65,536 x 36 bytes = 2.25 MiB per writing process and run
MASK = RING - 1
PREFIX = "tail-"
GAP_PATIENCE = 0.5  # seconds an unfilled slot with filled ones after it is waited for


class Tail:
    """This process's tail of one run: the mapped ring, the key ids, the sequence counter.

    The hot path reads ``mm``, ``ids`` and ``count`` and calls ``SLOT.pack_into`` itself;
    :meth:`key_id` defines a new key; :meth:`consume` (the journal writer) reads points back
    in order. :meth:`reopen` gives a forked child its own tail in place, so the ``Run`` objects
    holding this one keep working.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.key_lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        self.pid = os.getpid()  # the process writing this tail: the only one to consume it
        self.token = random_hex(4)
        self.path = self.run_dir / f"{PREFIX}{self.token}.ring"
        self.keys_path = self.path.with_suffix(".keys")
        self._fd = self._keys_fd = -1
        self.ids: dict[str, int] = {}
        self.keys: list[str] = []
        self.count = itertools.count(1)  # next() is atomic under the GIL: any thread may log
        self.consumed = 0  # the last seq the journal holds
        #: (seq, first seen) of an unfilled slot with filled ones after it
        self._gap: tuple[int, float] | None = None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, RING * SLOT.size)  # sparse: blocks only for the pages written
            self.mm: Any = mmap.mmap(fd, RING * SLOT.size)
            self._keys_fd = os.open(self.keys_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                    0o644)
            os.write(self._keys_fd, json.dumps({"pid": os.getpid(), "host": _host()}).encode()
                     + b"\n")
        except BaseException:
            os.close(fd)
            for path in (self.path, self.keys_path):
                try:
                    path.unlink()
                except OSError:
                    pass
            raise
        self._fd = fd

    def key_id(self, key: str) -> int:
        """The id of ``key``, defined in the keys file before its first point is written."""
        with self.key_lock:
            kid = self.ids.get(key)
            if kid is not None:
                return kid
            kid = len(self.keys)
            try:
                os.write(self._keys_fd, json.dumps([kid, key]).encode("ascii") + b"\n")
            except OSError:
                pass  # a full disk loses the name for recovery only: the journal still gets it
            self.keys.append(key)
            self.ids[key] = kid
            return kid

    def pending(self, seq: int) -> int:
        """Points written up to ``seq`` that the journal does not hold yet."""
        return seq - self.consumed

    def consume(self, final: bool = False) -> tuple[list[tuple[Any, ...]], int]:
        """The points after the last consumed one, in order, as ``(key, step, value, ts)``,
        and the seq of the last.

        Stops at a slot not written yet. A slot whose seq a thread took but never filled (it
        was interrupted in between: a KeyboardInterrupt) while later ones are filled is given
        up after ``GAP_PATIENCE`` seconds, or at once when ``final``.
        """
        out: list[tuple[Any, ...]] = []
        seq = self.consumed
        unpack, mm, keys, size = SLOT.unpack_from, self.mm, self.keys, SLOT.size
        while len(out) < RING:
            following = seq + 1
            step, value, ts, kid, got = unpack(mm, (following & MASK) * size)
            if got == following:
                out.append((keys[kid], step, value, ts))
            elif not self._abandoned(following, final):
                break
            seq = following
        return out, seq

    def _abandoned(self, seq: int, final: bool) -> bool:
        got = SLOT.unpack_from(self.mm, ((seq + 1) & MASK) * SLOT.size)[4]
        if got != seq + 1:
            return False  # nothing written after it: the end of what was logged
        if final:
            return True
        now = time.monotonic()
        if self._gap is None or self._gap[0] != seq:
            self._gap = (seq, now)
            return False
        return now - self._gap[1] > GAP_PATIENCE

    def mark(self, seq: int) -> None:
        self.consumed = seq

    def reopen(self) -> None:
        """In a forked child: a tail of its own (the parent consumes what it had written).

        The inherited descriptors are closed (the parent's lock stays the parent's) and the
        inherited mapping is dropped without touching the parent's file. The key lock is new: a
        parent's thread may have held it when another thread forked.
        """
        self.key_lock = threading.Lock()
        self._close_fds()
        self._open()

    def close(self, remove: bool) -> None:
        """Let go of the mapping and the lock; ``remove`` the files (all consumed)."""
        if remove:
            for path in (self.keys_path, self.path):
                try:
                    path.unlink()
                except OSError:
                    pass
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in (self._keys_fd, self._fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fd = self._keys_fd = -1
        # The mapping is not closed: another thread may hold it in the middle of a call. It is
        # unmapped when the last reference goes.


# -- taking over the tail of a process that is gone ------------------------------------------


def recover(run_dir: Path, own: str | None = None) -> int:
    """Append to the journal the points of every tail whose process is gone, then delete it.

    ``own`` is the caller's own tail token (never taken). Returns the points appended. Safe to
    run from several processes at once: each tail is taken under its ``flock``.
    """
    if fcntl is None:  # pragma: no cover - Windows
        return 0
    try:
        names = [e.name for e in os.scandir(run_dir) if e.name.startswith(PREFIX)
                 and e.name.endswith(".ring")]
    except OSError:
        return 0
    total = 0
    for name in sorted(names):
        token = name[len(PREFIX):-len(".ring")]
        if token != own:
            total += _take_over(run_dir, token)
    return total


def _take_over(run_dir: Path, token: str) -> int:
    """Take tail ``token`` over if its process is gone. Takeovers hold the ``.keys`` file's lock
    (the writer never takes it), so two readers never append the same points."""
    path = run_dir / f"{PREFIX}{token}.ring"
    keys = path.with_suffix(".keys")
    try:
        guard = os.open(keys, os.O_RDONLY)
    except OSError:
        return 0
    try:
        try:
            fcntl.flock(guard, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0  # another reader is taking it over
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return 0
        try:
            if not _same_file(guard, keys) or not _same_file(fd, path):
                return 0  # taken over and deleted by another reader meanwhile
            if not _owner_gone(fd, keys):
                return 0
            points = _unjournaled(run_dir, token, fd)
            if points:
                _append(run_dir, token, points)
            for leftover in (path, keys):
                try:
                    leftover.unlink()
                except OSError:
                    pass
            return len(points)
        finally:
            os.close(fd)
    finally:
        os.close(guard)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except OSError:
        return False


def _owner_gone(fd: int, keys: Path) -> bool:
    """Is the process that wrote this tail gone? Its lock is free; or it is held, but only by a
    child the dead process left in the middle of starting a program (a ``subprocess`` between
    fork and exec holds copies of its descriptors for a moment): the owner's pid, on this host,
    is no longer alive."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        pass
    owner = _read_owner(keys)
    if owner is None or owner.get("host") != _host():
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError, TypeError, KeyError):
        return False
    return False


def _read_owner(keys: Path) -> dict[str, Any] | None:
    try:
        with open(keys, "rb") as f:
            first = f.readline()
        owner = json.loads(first)
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _host() -> str:
    import socket

    return socket.gethostname()


def _unjournaled(run_dir: Path, token: str, fd: int) -> list[tuple[Any, ...]]:
    """The tail's points after the last seq the journal holds, in order, with their keys."""
    data = os.pread(fd, RING * SLOT.size, 0)
    if not data:
        return []
    done = covered_seq(run_dir / JOURNAL, token)
    keys = _read_keys(run_dir / f"{PREFIX}{token}.keys")
    slots = sorted((seq, kid, step, value, ts)
                   for step, value, ts, kid, seq in SLOT.iter_unpack(data[:len(data) // SLOT.size
                                                                          * SLOT.size])
                   if seq > done)
    return [(keys[kid], step, value, ts, seq) for seq, kid, step, value, ts in slots
            if kid in keys]


def _read_keys(path: Path) -> dict[int, str]:
    keys: dict[int, str] = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return keys
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by the kill
        if isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int) and \
                isinstance(entry[1], str):
            keys[entry[0]] = entry[1]
    return keys


def covered_seq(journal: Path, token: str) -> int:
    """The last seq of tail ``token`` that the journal holds (0: none)."""
    needle = f'"tail":"{token}"'.encode()
    best = 0
    for line in _lines(journal):
        if needle in line:
            for record in decode_line(line):  # as the reader reads it: a torn line too
                seq = record.get("seq")
                if record.get("tail") == token and isinstance(seq, int):
                    best = max(best, seq)
    return best


def _lines(path: Path) -> Iterator[bytes]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError:
        return
    with f:
        for line in f:
            if line.endswith(b"\n"):
                yield line


def _append(run_dir: Path, token: str, points: list[tuple[Any, ...]]) -> None:
    """One metrics line with the recovered points, marked with the tail and its last seq."""
    record, _ = metrics_record(((key, step, value, ts) for key, step, value, ts, _ in points))
    record.update(tail=token, seq=points[-1][4], recovered=True)
    fd = os.open(run_dir / JOURNAL, os.O_WRONLY | os.O_APPEND)
    try:
        data = encode_line(record)
        if os.fstat(fd).st_size and not _ends_with_newline(run_dir / JOURNAL):
            data = b"\n" + data  # a torn line left by the kill stays on its own
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
