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

__all__ = ["Snapshot", "capture", "entry_script", "snapshot"]

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


@lru_cache(maxsize=8)
def snapshot(start: str, max_diff_bytes: int) -> Snapshot | None:
    """The work tree holding ``start``: its diff against HEAD and its untracked files; None when
    it is not in a git work tree (or git is not installed)."""
    root = _git(start, "rev-parse", "--show-toplevel")
    if root is None:
        return None
    root_dir = root.decode("utf-8", "replace").strip()
    untracked = _names(_git(root_dir, "ls-files", "--others", "--exclude-standard", "-z"))
    diff, skipped = _diff(root_dir, max_diff_bytes)
    if skipped:
        log.warning("autolog: the uncommitted diff of %s was not recorded: %s", root_dir, skipped)
    return Snapshot(root_dir, diff, untracked[:MAX_UNTRACKED], skipped)


def _diff(root: str, limit: int) -> tuple[bytes | None, str | None]:
    changed = _names(_git(root, "diff", "HEAD", "--name-only", "-z"))
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


def _names(raw: bytes | None) -> list[str]:
    if not raw:
        return []
    return [name.decode("utf-8", "replace") for name in raw.split(b"\0") if name]


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
