"""Relaying fd 1 and 2 through a pseudo-terminal or a pipe, so that every byte the process (its
C extensions and its child processes included) writes there is seen, and still reaches where it
went before, unchanged.

A descriptor that was a terminal is pointed at a new pseudo-terminal whose output processing is
off (``\\n`` stays ``\\n``) and whose window size is the terminal's, so programs still see a
terminal of the same size (line buffering, colours and progress bars unchanged); otherwise at a
pipe. When stdout and stderr go to the same place they share one relay, so their order is kept.
A relay thread reads, writes the bytes to the original descriptor, then hands them to the
console capture (decoded later, on the journal writer's thread). At exit the original descriptors
are put back first, so what is written during interpreter shutdown goes straight to them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import struct
import time
from collections.abc import Callable

from .._runtime import start_thread

__all__ = ["Relay", "relay_descriptors"]

Feed = Callable[[str, bytes], None]
READ_SIZE = 64 * 1024
SETTLE_TIMEOUT = 0.5


class Relay:
    """Descriptors ``fds`` (one destination) relayed through one pipe or pseudo-terminal."""

    def __init__(self, fds: tuple[int, ...], name: str, feed: Feed):
        self.fds = fds
        self.name = name
        self.feed = feed
        self.target = os.dup(fds[0])  # where the bytes went before: they still go there
        self.saved = {fd: os.dup(fd) for fd in fds}
        if os.isatty(fds[0]):
            self.read_end, write_end = os.openpty()
            _like_terminal(write_end, self.target)
        else:
            self.read_end, write_end = os.pipe()
        for fd in fds:
            os.dup2(write_end, fd)
        os.close(write_end)
        self._busy = False
        self._forward = True
        self._stopped = False
        self.thread = start_thread(self._pump, f"autolog-console-{name}")

    def _pump(self) -> None:
        import select

        poller = select.poll()
        poller.register(self.read_end, select.POLLIN)
        while True:
            poller.poll()  # readable, or hung up: the read tells which
            # busy before the read empties the pipe, so that "nothing unread and not busy"
            # (settle) is never seen while bytes already read are not yet relayed
            self._busy = True
            try:
                data = os.read(self.read_end, READ_SIZE)
            except OSError:  # EIO: a pseudo-terminal no process holds open any more
                break
            if not data:
                break
            try:
                self._write(data)
                self.feed(self.name, data)
            finally:
                self._busy = False

    def _write(self, data: bytes) -> None:
        if not self._forward:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.target, view):]
        except OSError:  # the reader went away (a closed pipe): keep draining, stop writing
            self._forward = False

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait until the bytes written so far have been relayed (at most ``timeout``): nothing
        unread, then the relay not busy. The relay marks itself busy before each read, so a read
        that has emptied the pipe shows as busy until its bytes are relayed: one look that sees
        both is enough (no grace period)."""
        deadline = time.monotonic() + timeout
        while self.thread.is_alive() and (_unread(self.read_end) or self._busy):
            if time.monotonic() >= deadline:
                return
            time.sleep(0.001)

    def stop(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Put the original descriptors back, then let the relay read to the end: with no
        other process holding the relay's end, that is when everything was relayed."""
        if self._stopped:
            return
        self._stopped = True
        for fd, saved in self.saved.items():
            with contextlib.suppress(OSError):
                os.dup2(saved, fd)
            os.close(saved)
        self.thread.join(timeout)  # children still holding it: the thread goes on for them


def _like_terminal(fd: int, terminal: int) -> None:
    """No output processing (bytes pass unchanged) and the terminal's window size."""
    import fcntl
    import termios

    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(terminal, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, size)


def _unread(fd: int) -> int:
    import fcntl
    import termios

    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return 0


def _same_destination(a: int, b: int) -> bool:
    try:
        first, second = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (first.st_dev, first.st_ino, first.st_rdev) == (second.st_dev, second.st_ino,
                                                           second.st_rdev)


def relay_descriptors(feed: Feed) -> list[Relay]:
    """Relay fd 1 and 2 (one relay when they go to the same place); undone at exit."""
    relays: list[Relay] = []
    try:
        if _same_destination(1, 2):
            relays.append(Relay((1, 2), "stdout", feed))
        else:
            relays.append(Relay((1,), "stdout", feed))
            relays.append(Relay((2,), "stderr", feed))
    except OSError:  # no descriptor 1 or 2 (a daemon): nothing to relay
        for relay in relays:
            relay.stop()
        return []
    atexit.register(_restore, relays)
    return relays


def _restore(relays: list[Relay]) -> None:
    """At exit (registered first, so it runs after the others): flush Python's streams, then
    give the descriptors back, so the interpreter's last writes do not depend on a thread."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    for relay in relays:
        relay.stop()
