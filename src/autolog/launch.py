"""``autolog run``: record a training script without editing it.

``autolog run [--backend B] [--project P] [--name N] [--dir D] -- python train.py ARGS`` (or
``-- torchrun ...``, ``-- accelerate launch ...``, or just ``-- train.py ARGS``) starts the command
with autolog's bootstrap directory first on ``PYTHONPATH``. Its ``sitecustomize`` (which chains
to any other ``sitecustomize`` on the path) calls :func:`bootstrap` in every Python process of
the command whose environment says ``AUTOLOG_LAUNCHED=1``: the script, torchrun's workers,
accelerate's. There it captures stdout and stderr at the file-descriptor level (rank 0), enables
autologging with the code and the command line captured too, and makes ``sys.exit`` with a
non-zero code end the active runs FAILED. The run context names the user's script and its argv,
as if it had been started directly; the whole command is the tag ``autolog.launch.command``.

The launcher waits for the command, forwards SIGTERM (and SIGUSR1/2) to it (Ctrl+C reaches the
command from the terminal directly), and exits with the command's exit code, or dies of the same
signal. Runs the command left without an end (it was killed, or left through ``os._exit``) are
ended here, from what is on disk: KILLED after a signal, FAILED after a non-zero exit, FINISHED
otherwise. Each process of the command appends to a file the launcher names
(``AUTOLOG_LAUNCH_RUNS``) the directory of each run it starts or resumes, and ``end`` and the
directory once the run's end is on disk, so the launcher reads only the runs left without one,
and none at all (no journal code imported) after a command that ended its runs.

The launcher is time the user's command waits, before the command starts and after it ends:
``autolog run`` reaches :func:`main` without importing the recording code (``import autolog``
loads it on first use), the usual options are read without argparse (which is for ``--help``
and mistakes), and the command is started with ``os.posix_spawnp`` and waited for with
``os.waitpid`` rather than through :mod:`subprocess` (5 ms of imports), where the platform has
them; not even :mod:`contextlib` is imported (0.6 ms). :mod:`autolog.bootstrap` is what the
command's processes run.
"""

from __future__ import annotations

import os
import signal
import sys
import time

TYPE_CHECKING = False  # typing's, without importing typing: the launcher starts the command first
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["main"]

SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_site")
OPTIONS = ("--backend", "--project", "--name", "--dir")
FORWARDED = ("SIGTERM", "SIGUSR1", "SIGUSR2")
#: signals Python ignores that a command gets back at their default, as subprocess does
RESTORED = ("SIGPIPE", "SIGXFZ", "SIGXFSZ")


def main(argv: list[str]) -> int:
    """``autolog run ...``: the command's exit code."""
    options, command = _parse(argv)
    if command[0].endswith(".py"):
        command = [sys.executable, *command]
    launch_id = os.urandom(8).hex()
    env = _environment(options, launch_id, command)
    runs_file = _runs_file()
    if runs_file is not None:
        env["AUTOLOG_LAUNCH_RUNS"] = runs_file
    try:
        child = _start(command, env)
    except OSError as exc:
        _remove(runs_file)
        print(f"autolog run: cannot start {command[0]!r}: {exc.strerror or exc}",
              file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    code = _wait(child)
    if runs_file is not None:
        try:
            _end_left_runs(runs_file, code)
        except Exception as exc:  # the command's exit code is what counts
            print(f"autolog run: the runs the command left open were not checked: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            _remove(runs_file)
    return _exit_as(code)


def _runs_file() -> str | None:
    """A new empty file where the command's processes append the directory of each run they
    start (``runs._tell_launcher``): what the launcher checks after the command, instead of reading
    the whole store. None when no temporary file can be made (then nothing is checked)."""
    for folder in (os.environ.get("TMPDIR"), "/tmp", os.getcwd()):
        if not folder:
            continue
        path = os.path.join(folder, f"autolog-launch-{os.urandom(8).hex()}.runs")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:
            continue
        return path
    return None


def _remove(path: str | None) -> None:
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


def _parse(argv: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """The options and the command. The usual forms (``--backend B`` or ``--backend=B``...,
    then ``--`` or the command) are read here; anything else (``--help``, an abbreviated or
    unknown option, a missing value or command) goes to argparse, for its help and errors."""
    options: dict[str, str | None] = dict.fromkeys(name[2:] for name in OPTIONS)
    at = 0
    while at < len(argv):
        name, equals, value = argv[at].partition("=")
        if name not in OPTIONS:
            break
        if not equals:
            if at + 1 == len(argv) or argv[at + 1].startswith("-"):
                return _parse_fully(argv)
            at += 1
            value = argv[at]
        options[name[2:]] = value
        at += 1
    command = argv[at + 1:] if argv[at:at + 1] == ["--"] else argv[at:]
    if not command or (argv[at:at + 1] != ["--"] and command[0].startswith("-")):
        return _parse_fully(argv)
    return options, command


def _parse_fully(argv: list[str]) -> tuple[dict[str, str | None], list[str]]:
    import argparse

    parser = argparse.ArgumentParser(
        prog="autolog run", description="Run a training command with autolog on in every "
        "Python process it starts: runs, console, code, command line.",
        epilog="example: autolog run --backend mlflow -- python train.py --lr 0.1")
    parser.add_argument("--backend", help="where runs go (default: AUTOLOG_BACKEND or local)")
    parser.add_argument("--project", help="project / experiment name")
    parser.add_argument("--name", help="name of the (first) run")
    parser.add_argument("--dir", help="local store (default: AUTOLOG_DIR)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command, after --: python train.py ARGS, torchrun ...")
    parsed = parser.parse_args(argv)
    command = parsed.command[1:] if parsed.command[:1] == ["--"] else parsed.command
    if not command:
        parser.error("give the command to run after --, e.g. autolog run -- python train.py")
    return {name[2:]: getattr(parsed, name[2:]) for name in OPTIONS}, command


def _environment(options: dict[str, str | None], launch_id: str,
                 command: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    paths = [SITE_DIR, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(AUTOLOG_LAUNCHED="1", AUTOLOG_LAUNCH_ID=launch_id,
               AUTOLOG_LAUNCH_COMMAND=" ".join(_quote(part) for part in command))
    for name, value in (("BACKEND", options["backend"]), ("PROJECT", options["project"]),
                        ("RUN_NAME", options["name"]), ("DIR", options["dir"])):
        if value:
            env[f"AUTOLOG_{name}"] = value
    store = os.path.expanduser(env.get("AUTOLOG_DIR") or "./autolog-runs")
    env["AUTOLOG_DIR"] = os.path.abspath(store)
    env.setdefault("AUTOLOG_CAPTURE_CODE", "1")  # what `autolog run` adds to enable()
    env.setdefault("AUTOLOG_CAPTURE_ARGS", "1")
    return env


def _start(command: list[str], env: dict[str, str]) -> tuple[Callable[[], int],
                                                            Callable[[int], None]]:
    """Start the command: how to wait for its exit code (negative: the signal that killed it),
    and how to send it a signal."""
    if not hasattr(os, "posix_spawnp"):  # pragma: no cover - Windows
        import subprocess

        child = subprocess.Popen(command, env=env)

        def signal_child(signum: int) -> None:
            if child.poll() is None:
                child.send_signal(signum)

        return child.wait, signal_child
    restored = [getattr(signal, name) for name in RESTORED if hasattr(signal, name)]
    pid = os.posix_spawnp(command[0], command, env, setsigdef=restored)
    done: list[int] = []

    def wait() -> int:
        if not done:
            _, status = os.waitpid(pid, 0)  # retried after a signal handler (PEP 475)
            done.append(os.waitstatus_to_exitcode(status))
        return done[0]

    def send(signum: int) -> None:
        if not done:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    return wait, send


def _quote(word: str) -> str:
    """``shlex.quote`` without its regular expression (``re`` is 3 ms of the launcher's start)."""
    if word and all(c in _SAFE for c in word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def _wait(child: tuple[Callable[[], int], Callable[[int], None]]) -> int:
    """The child's return code; the signals a scheduler sends us are passed on. Ctrl+C reaches
    the child from the terminal itself, so the launcher only waits through it."""
    wait, send = child

    def forward(signum: int, frame: Any) -> None:
        send(signum)

    previous: dict[int, Any] = {}
    for name in FORWARDED:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, forward)
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _exit_as(code: int) -> int:
    """The exit code to return; a child killed by a signal kills us with the same signal."""
    if code >= 0:
        return code
    try:
        signal.signal(-code, signal.SIG_DFL)
    except (OSError, ValueError):  # SIGKILL and SIGSTOP take no handler
        pass
    os.kill(os.getpid(), -code)
    return 128 - code  # the signal did not end us (it is blocked or ignored here)


# -- runs the command left open ------------------------------------------------------------------


def _end_left_runs(runs_file: str, code: int) -> None:
    """End the runs the command's processes started and left without an end."""
    written: dict[str, None] = {}  # in the order they were started
    with open(runs_file, encoding="utf-8", errors="surrogateescape") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.startswith("end\t"):
                written.pop(line[4:], None)
            elif line:
                written[line] = None
    if not written:
        return
    from pathlib import Path

    from .journal.files import JOURNAL
    from .journal.reader import iter_journal, load_run, lock_is_held

    status = "KILLED" if code < 0 else ("FAILED" if code > 0 else "FINISHED")
    left = []
    for path in written:
        try:
            record = load_run(Path(path))
        except (LookupError, OSError):
            continue  # killed before its start was written, or removed since
        meta = record._meta
        if meta.get("status") not in (None, "RUNNING"):
            continue
        if lock_is_held(record.path, meta):
            continue  # a process it started still runs it
        ends = [r["t"] for _, r in iter_journal(record.path / JOURNAL)
                if r.get("t") in ("end", "resume")]
        if ends[-1:] == ["end"]:  # ended, and not resumed since
            continue
        _end(record, status)
        left.append(record)
    if left:
        backends = sorted({b for r in left for b in r._meta.get("backends", ()) if b != "local"})
        where = f"; run `autolog sync` to deliver them to {', '.join(backends)}" if backends \
            else ""
        print(f"autolog run: ended {len(left)} run(s) the command left open as {status}{where}",
              file=sys.stderr)


def _end(record: Any, status: str) -> None:
    """Append the end event (and the console's artifact) to a run no process holds, and mark
    its meta.json ended, as the process would have."""
    from .capture.console import CONSOLE_LOG
    from .journal.codec import dumps_line
    from .journal.files import LOCK, FileLock
    from .journal.tail import recover
    from .journal.writer import Journal, write_meta

    lock = FileLock(record.path / LOCK)
    if not lock.acquire():
        lock.release()
        return
    try:
        recover(record.path)  # the points its processes left in their tails, before the end
        now = int(time.time() * 1000)
        lines: list[dict[str, Any]] = []
        if (record.artifacts_dir / CONSOLE_LOG).is_file() and CONSOLE_LOG not in \
                record.artifacts:
            lines.append({"t": "artifact", "path": CONSOLE_LOG, "files": [CONSOLE_LOG]})
        lines.append({"t": "end", "status": status, "time": now})
        journal = Journal(record.path)
        journal.write("".join(dumps_line(line) + "\n" for line in lines).encode("utf-8"))
        journal.close()
        meta = dict(record._meta)
        meta.update(status=status, end_time=now, metrics=record.metrics)
        write_meta(record.path, meta)
    finally:
        lock.release()
