"""The code a run ran, as artifacts under ``code/``: the uncommitted changes to tracked files
(``code/diff.patch``, ``git diff HEAD``), the untracked files (``code/untracked.txt``, their
names), and a copy of the entry script.

Read once per process (the code that started it), on the run-context thread, never on the
training thread. The diff is bounded by ``AUTOLOG_MAX_DIFF_BYTES``: the sizes of the changed
files are added up before git is asked for the diff, and the diff is read no further than the
bound, so a huge change (a data file committed by mistake, then rewritten) costs a ``stat`` per
file and one warning, not gigabytes.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["Snapshot", "Status", "capture", "entry_script", "snapshot", "status", "work_tree"]

log = logging.getLogger("autolog")

GIT_TIMEOUT = 10.0
MAX_UNTRACKED = 10_000
MAX_SCRIPT_BYTES = 10 * 1024 * 1024
DIFF = "code/diff.patch"
UNTRACKED = "code/untracked.txt"


class Snapshot(NamedTuple):
    root: str
    diff: bytes | None  # None: skipped (too large, or git failed); b"": nothing uncommitted
    untracked: list[str]
    skipped: str | None  # why the diff is not there


def capture(run: Run, max_diff_bytes: int) -> dict[str, str]:
    """Write the code artifacts of ``run``; tags saying what they are."""
    tags: dict[str, str] = {}
    script = entry_script()
    found = snapshot(str(script.parent if script else Path.cwd()), max_diff_bytes)
    if found is not None:
        tags["autolog.code.git_root"] = found.root
        if found.diff:
            _write(run, DIFF, found.diff)
        if found.skipped:
            tags["autolog.code.diff_skipped"] = found.skipped
        if found.untracked:
            _write(run, UNTRACKED, ("\n".join(found.untracked) + "\n").encode("utf-8"))
        tags["autolog.code.untracked_files"] = str(len(found.untracked))
    if script is not None and script.stat().st_size <= MAX_SCRIPT_BYTES:
        target = run.artifact_dir("code") / script.name
        shutil.copyfile(script, target)
        run.record_artifact(f"code/{script.name}")
        tags["autolog.code.entry_script"] = f"code/{script.name}"
    return tags


def entry_script() -> Path | None:
    """The script the process runs (``python train.py``, a torchrun worker, ``-m pkg.mod``)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None
    script = Path(path).resolve()
    return script if script.is_file() and script.suffix == ".py" else None


def _write(run: Run, name: str, data: bytes) -> None:
    target = run.artifact_dir("code") / Path(name).name
    target.write_bytes(data)
    run.record_artifact(name)


class Status(NamedTuple):
    changed: list[str]  # tracked files changed against HEAD, staged or not (a rename: its new name)
    untracked: list[str]  # sorted; empty when not asked for


def work_tree(start: Path) -> Path | None:
    """The root of the git work tree holding ``start``: the nearest directory with a ``.git``
    (a directory, or a worktree's or submodule's ``.git`` file)."""
    return next((d for d in (start, *start.parents) if (d / ".git").exists()), None)


@lru_cache(maxsize=8)
def status(root: str, untracked: bool) -> Status | None:
    """One ``git status`` of the work tree at ``root``: what changed, and the untracked files
    (``.gitignore`` respected) when ``untracked``; None when git cannot tell. Read once per
    process: the dirty tag and the code snapshot share it, one git process where four ran."""
    raw = _git(root, "status", "--porcelain=v1", "-z",
               "--untracked-files=" + ("all" if untracked else "no"))
    if raw is None:
        return None
    changed, others = [], []
    entries = iter(raw.split(b"\0"))
    for entry in entries:  # "XY path", paths from the root; a rename or copy: "XY new", "old"
        if len(entry) < 4:
            continue
        code, name = entry[:2], entry[3:].decode("utf-8", "replace")
        if code == b"??":
            others.append(name)
        else:
            changed.append(name)
            if b"R" in code or b"C" in code:
                next(entries, None)
    return Status(changed, sorted(others))


@lru_cache(maxsize=8)
def snapshot(start: str, max_diff_bytes: int) -> Snapshot | None:
    """The work tree holding ``start``: its diff against HEAD and its untracked files; None when
    it is not in a git work tree (or git is not installed)."""
    root = work_tree(Path(start))
    found = status(str(root), True) if root is not None else None
    if root is None or found is None:
        return None
    diff, skipped = _diff(str(root), found.changed, max_diff_bytes)
    if skipped:
        log.warning("autolog: the uncommitted diff of %s was not recorded: %s", root, skipped)
    return Snapshot(str(root), diff, found.untracked[:MAX_UNTRACKED], skipped)


def _diff(root: str, changed: list[str], limit: int) -> tuple[bytes | None, str | None]:
    size = sum(_size(os.path.join(root, name)) for name in changed)
    if size > limit:
        return None, (f"the {len(changed)} changed file(s) hold {_human(size)}, over "
                      f"AUTOLOG_MAX_DIFF_BYTES={limit} ({_human(limit)})")
    if not changed:
        return b"", None
    return _bounded_diff(root, limit)


def _bounded_diff(root: str, limit: int) -> tuple[bytes | None, str | None]:
    """``git diff HEAD``, read no further than ``limit`` bytes."""
    try:
        process = subprocess.Popen(["git", "diff", "HEAD", "--no-color", "--no-ext-diff"],
                                   cwd=root, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
    except OSError as exc:
        return None, f"git could not run ({exc})"
    assert process.stdout is not None
    try:
        data = process.stdout.read(limit + 1)
    finally:
        process.stdout.close()
        process.kill()
        process.wait(GIT_TIMEOUT)
    if len(data) > limit:
        return None, f"the diff is over AUTOLOG_MAX_DIFF_BYTES={limit} ({_human(limit)})"
    return data, None


def _git(cwd: str, *args: str) -> bytes | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True,
                              timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:  # deleted: its diff is the old content, bounded by the read below
        return 0


def _human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
