"""Run context: where a run happens, captured on a background thread at run start.

Tags (all under ``autolog.``): git commit, branch and dirty state; entry script and argv; Python
version and implementation; platform; hostname; user; autolog's version. Plus a
``requirements.txt`` artifact of the installed distributions, read from ``importlib.metadata``
(no ``pip`` subprocess). With ``capture_code`` the uncommitted diff, the untracked files and the
entry script (:mod:`autolog.capture.code`); with ``capture_args`` the command line's values as
params (:mod:`autolog.capture.args`). What does not change during a process is computed once
and cached.
"""

from __future__ import annotations

import getpass
import logging
import platform
import shlex
import socket
import subprocess
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .capture import args, code
from .config import current
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .plugins import Plugins
    from .run import Run

__all__ = ["capture", "git_info", "prewarm", "requirements"]

log = logging.getLogger("autolog")

JOIN_TIMEOUT = 5.0


def capture(run: Run, plugins: Plugins) -> None:
    """Collect every plugin's context tags for ``run`` on a daemon thread.

    The run's end waits (up to a few seconds) for the thread, so the tags land before the end.
    """
    def work() -> None:
        tags = plugins.run_context(run)
        if tags:
            run.set_tags(tags)

    thread = threading.Thread(target=work, name="autolog-context", daemon=True)
    thread.start()
    run._on_end.insert(0, lambda: thread.join(JOIN_TIMEOUT))


def prewarm() -> None:
    """Compute the cached context on a daemon thread now (``enable()`` calls it), so the first
    training run does not wait for the package scan when it ends."""
    def work() -> None:
        try:
            _process_tags()
            git_info(_source_dir())
            requirements()
            settings = current()
            if settings.capture_code:
                code.snapshot(str(_source_dir()), settings.max_diff_bytes)
        except Exception:
            pass  # the run's own capture reports failures

    threading.Thread(target=work, name="autolog-prewarm", daemon=True).start()


@hookimpl
def autolog_run_context(run: Run) -> dict[str, str]:
    from ._version import __version__

    tags = {"autolog.version": __version__, **_process_tags(), **git_info(_source_dir())}
    run.log_text_artifact(requirements(), "requirements.txt")
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
    main = sys.modules.get("__main__")
    entry = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    return {
        "autolog.source.entry_point": str(entry),
        "autolog.source.argv": shlex.join(sys.argv),
        "autolog.python.version": platform.python_version(),
        "autolog.python.implementation": platform.python_implementation(),
        "autolog.platform": platform.platform(),
        "autolog.host": socket.gethostname(),
        "autolog.user": _user(),
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return ""


def _source_dir() -> Path:
    main = sys.modules.get("__main__")
    entry = getattr(main, "__file__", None)
    return Path(entry).resolve().parent if entry else Path.cwd()


@lru_cache(maxsize=8)
def git_info(start: Path) -> dict[str, str]:
    """Commit, branch and dirty state of the git work tree holding ``start``, read from .git."""
    root = next((d for d in (start, *start.parents) if (d / ".git").exists()), None)
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
    dirty = _dirty(root)
    if dirty is not None:
        info["autolog.git.dirty"] = "true" if dirty else "false"
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


def _dirty(root: Path) -> bool | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                             capture_output=True, text=True, timeout=JOIN_TIMEOUT, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip())


@lru_cache(maxsize=1)
def requirements() -> str:
    """``name==version`` of every installed distribution, sorted, one per line."""
    from importlib import metadata

    pins = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            pins.add(f"{name}=={dist.version}")
    return "\n".join(sorted(pins, key=str.lower)) + "\n"
