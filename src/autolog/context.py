"""Run context: where a run happens, captured on a background thread at run start.

Tags (all under ``autolog.``): git commit, branch and dirty state; entry script and argv; Python
version and implementation; platform; hostname; user; autolog's version. Plus a
``requirements.txt`` artifact of the installed distributions, read from the names of their
``*.dist-info`` directories (no ``pip`` subprocess, no metadata parsing: a directory listing).
With ``capture_code`` the uncommitted diff, the untracked files and the entry script
(:mod:`autolog.capture.code`); with ``capture_args`` the command line's values as params
(:mod:`autolog.capture.args`). What does not change during a process is computed once and
cached; the standard-library modules it needs are imported on the thread that computes it.

The run's end waits for the context (it is written before the end event) for up to
``CONTEXT_WAIT`` seconds: each part is bounded on its own (``git status`` by its timeout, the
package list by a directory listing), so on a loaded machine the end waits rather than
dropping it; past that bound (a plugin that hangs), the end says what was not recorded.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ._runtime import start_thread
from .capture import args, code
from .config import current
from .hookspecs import hookimpl
from .report import warn_once

if TYPE_CHECKING:
    from collections.abc import Callable

    from .plugins import Plugins
    from .run import Run

__all__ = ["capture", "git_info", "prewarm", "requirements"]

log = logging.getLogger("autolog")

CONTEXT_WAIT = 60.0  # the most a run's end waits for its context


def capture(run: Run, plugins: Plugins) -> None:
    """Collect the context of ``run`` on a daemon thread: the plugins' tags and
    ``requirements.txt``.

    The run's end waits for the thread (up to ``CONTEXT_WAIT``), so the context is written
    before the end event, however long the machine takes to compute it.
    """
    Context(run, plugins).start()


class Context:
    """One run's context capture: computed on a thread, written unless the end gave up."""

    def __init__(self, run: Run, plugins: Plugins):
        self.run, self.plugins = run, plugins
        self._lock = threading.Lock()
        self._open = True  # False once the end stopped waiting: nothing more is written
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = start_thread(self._work, "autolog-context")
        self.run._on_end.insert(0, self.wait)

    def _work(self) -> None:
        tags = self.plugins.run_context(self.run)
        # the package list belongs to this module's plugin (AUTOLOG_DISABLE_PLUGINS=context)
        packages = requirements() if self.plugins.has("context") else None
        with self._lock:
            if self._open:
                if tags:
                    self.run.set_tags(tags)
                if packages is not None:
                    self.run.log_text_artifact(packages, "requirements.txt")

    def wait(self) -> None:
        """At the run's end: let the context land first (bounded)."""
        assert self._thread is not None
        self._thread.join(CONTEXT_WAIT)
        with self._lock:
            self._open = False
        if self._thread.is_alive():
            warn_once(f"context {self.run.id}",
                      f"autolog: the run context of run {self.run.id} (git, argv, packages, "
                      f"plugins' tags) was not ready {CONTEXT_WAIT:g} s after the run ended; it "
                      f"was not recorded")


def prewarm(*also: Callable[[], object]) -> None:
    """Compute the cached context on a daemon thread now (``enable()`` calls it, before any
    training), then run ``also`` there: the first training run then neither waits for this work
    nor competes with it for the interpreter (a Python thread that computes makes one that
    calls into numpy wait for the GIL)."""
    def work() -> None:
        steps: list[Callable[[], object]] = [_process_tags, lambda: git_info(_source_dir()),
                                             requirements, _code_snapshot, *also]
        for step in steps:
            try:
                step()
            except Exception:
                pass  # the run's own capture reports failures

    start_thread(work, "autolog-prewarm")


def _code_snapshot() -> None:
    settings = current()
    if settings.capture_code:
        code.snapshot(str(_source_dir()), settings.max_diff_bytes)


@hookimpl
def autolog_run_context(run: Run) -> dict[str, str]:
    from ._version import __version__

    tags = {"autolog.version": __version__, **_process_tags(), **git_info(_source_dir())}
    settings = run.settings
    if settings.capture_args:
        args.log_into(run)
    if settings.capture_code:
        try:
            tags.update(code.capture(run, settings.max_diff_bytes))
        except OSError as exc:  # an unreadable script, a full disk: the rest of the context
            log.warning("autolog: the code of run %s was not recorded: %s", run.id, exc)
    return tags


@lru_cache(maxsize=1)
def _process_tags() -> dict[str, str]:
    import platform
    import shlex
    import socket

    main = sys.modules.get("__main__")
    entry = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    return {
        "autolog.source.entry_point": str(entry),
        "autolog.source.argv": shlex.join(sys.argv),
        "autolog.python.version": platform.python_version(),
        "autolog.python.implementation": platform.python_implementation(),
        "autolog.platform": _platform(),
        "autolog.host": socket.gethostname(),
        "autolog.user": _user(),
    }


def _platform() -> str:
    """``platform.platform()``'s answer (``Linux-6.1.0-x86_64-with-glibc2.36``) without its
    ``libc_ver()``, which reads the Python executable through in Python (tens of ms of CPU)."""
    import platform

    confstr = getattr(os, "confstr", None)
    try:
        libc = confstr("CS_GNU_LIBC_VERSION") if confstr is not None else None
    except (ValueError, OSError):
        libc = None
    if sys.platform != "linux" or not libc:
        return platform.platform()
    uname = os.uname()
    return f"Linux-{uname.release}-{uname.machine}-with-{libc.replace(' ', '')}"


def _user() -> str:
    """``getpass.getuser()``'s answer, without importing getpass (it loads termios)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if user := os.environ.get(name):
            return user
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, AttributeError):  # no pwd (Windows), no entry for the uid
        return ""


def _source_dir() -> Path:
    main = sys.modules.get("__main__")
    entry = getattr(main, "__file__", None)
    return Path(entry).resolve().parent if entry else Path.cwd()


@lru_cache(maxsize=8)
def git_info(start: Path) -> dict[str, str]:
    """Commit, branch and dirty state of the git work tree holding ``start``, read from .git."""
    root = code.work_tree(start)
    if root is None:
        return {}
    git_dir = _git_dir(root / ".git")
    head = _read(git_dir / "HEAD")
    info = {"autolog.git.repo": str(root)}
    if head.startswith("ref: "):
        ref = head[5:]
        info["autolog.git.branch"] = ref.removeprefix("refs/heads/")
        commit = _read(git_dir / ref) or _packed_ref(git_dir, ref)
    else:
        commit = head
    if commit:
        info["autolog.git.commit"] = commit
    # with the code captured, the same git status lists the untracked files for the snapshot
    found = code.status(str(root), current().capture_code)
    if found is not None:
        info["autolog.git.dirty"] = "true" if found.changed else "false"
    return info


def _git_dir(dot_git: Path) -> Path:
    if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
        target = _read(dot_git).removeprefix("gitdir: ")
        return (dot_git.parent / target).resolve()
    return dot_git


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _packed_ref(git_dir: Path, ref: str) -> str:
    common = git_dir / (_read(git_dir / "commondir") or ".")  # worktrees share refs
    for line in _read(common / "packed-refs").splitlines():
        sha, _, name = line.partition(" ")
        if name == ref:
            return sha
    return ""


@lru_cache(maxsize=1)
def requirements() -> str:
    """``name==version`` of every installed distribution, sorted, one per line.

    Read from the names of the ``*.dist-info`` (``<name>-<version>``) and ``*.egg-info``
    directories on ``sys.path``, the first of a name winning as in ``importlib.metadata``: a
    directory listing instead of parsing every distribution's metadata (100 ms and more).
    """
    pins: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            found = _distribution(os.path.join(entry or ".", name))
            if found is not None:
                pins.setdefault(found[0].lower(), f"{found[0]}=={found[1]}")
    return "\n".join(sorted(pins.values(), key=str.lower)) + "\n"


def _distribution(path: str) -> tuple[str, str] | None:
    """(name, version) of a ``*.dist-info`` / ``*.egg-info`` directory or file."""
    base = os.path.basename(path)
    stem, dot, kind = base.rpartition(".")
    if not dot or kind not in ("dist-info", "egg-info"):
        return None
    name, _, version = stem.partition("-")
    version = version.split("-")[0]  # an egg's "-py3.11" suffix
    if not version:
        version = _pkg_info_version(path)
    return (name.replace("_", "-"), version) if name and version else None


def _pkg_info_version(path: str) -> str:
    """The ``Version:`` of an egg-info without one in its name (a development install)."""
    info = os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    try:
        with open(info, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break
    except OSError:
        pass
    return ""
