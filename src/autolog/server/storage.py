"""Artifact files on disk: ``<root>/<run id>/<path>``, confined to the root, streamed in.

A path is checked twice. As text: relative, ``/``-separated, no empty, ``.`` or ``..`` part, no
backslash, NUL or control character, bounded lengths. Then on disk: the target, resolved through
any symlinks already there, must still lie inside the run's directory, so a symlink planted in
the tree cannot lead a write outside it. An upload goes to a temporary file opened with
``O_EXCL | O_NOFOLLOW`` in the target's directory, is counted against the size limit as it
streams, and replaces the target atomically (the same path uploaded again is overwritten, so a
retried upload is idempotent); readers never see half a file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

__all__ = ["ArtifactStore", "PathRejected", "StorageConflict", "TooLarge", "check_path"]

_TMP_PREFIX = ".upload-"


class PathRejected(ValueError):
    """The artifact path is not a safe relative path inside the run."""


class StorageConflict(Exception):
    """The path clashes with what is on disk (a file where a directory is needed, or the
    reverse)."""


class TooLarge(Exception):
    """More bytes than the upload limit."""


def check_path(path: str) -> list[str]:
    """The parts of a safe relative artifact path, or PathRejected saying why not."""
    if not path:
        raise PathRejected("the artifact path is empty")
    if len(path.encode("utf-8", "surrogatepass")) > 1000:
        raise PathRejected("the artifact path is longer than 1000 bytes")
    if path.startswith("/") or "\\" in path:
        raise PathRejected(f"{path!r}: give a relative path with / separators")
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in path):
        raise PathRejected(f"{path!r}: control characters are not allowed")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise PathRejected(f"{path!r}: empty, '.' and '..' parts are not allowed")
        if len(part.encode("utf-8")) > 255:
            raise PathRejected(f"{path!r}: a part is longer than 255 bytes")
        if part.startswith(_TMP_PREFIX):
            raise PathRejected(f"{path!r}: names starting with {_TMP_PREFIX!r} are reserved")
    return parts


class ArtifactStore:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()

    def target(self, run_id: str, path: str) -> Path:
        """Where ``path`` of ``run_id`` lives, checked to be inside the run's directory."""
        parts = check_path(path)
        base = self.root / run_id
        target = base.joinpath(*parts)
        if not target.resolve().is_relative_to(base.resolve()):
            raise PathRejected(f"{path!r} leads outside the run's artifact directory")
        return target

    def existing(self, run_id: str, path: str) -> Path | None:
        """The stored file for ``path``, or None."""
        target = self.target(run_id, path)
        return target if target.is_file() else None

    async def save(self, run_id: str, path: str, chunks: AsyncIterator[bytes],
                   limit: int) -> tuple[int, str]:
        """Stream ``chunks`` into ``path``; returns (size, sha256)."""
        target = self.target(run_id, path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _storage_error(exc, path)
        if not target.parent.resolve().is_relative_to((self.root / run_id).resolve()):
            raise PathRejected(f"{path!r} leads outside the run's artifact directory")
        tmp = target.parent / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o644)
        try:
            size, digest = await _copy(fd, chunks, limit)
            os.close(fd)
            fd = -1
            os.replace(tmp, target)
        except BaseException as exc:
            if fd >= 0:
                os.close(fd)
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _storage_error(exc, path)
            raise
        return size, digest


async def _copy(fd: int, chunks: AsyncIterator[bytes], limit: int) -> tuple[int, str]:
    size = 0
    digest = hashlib.sha256()
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the upload is larger than the limit of {limit} bytes")
        digest.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]
    return size, digest.hexdigest()


def _storage_error(exc: OSError, path: str) -> Exception:
    """Turn what the file system says about a client's path into a 4xx-shaped error."""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOTEMPTY):
        return StorageConflict(f"{path!r} clashes with an artifact already stored "
                               "(a file where a directory is needed, or the reverse)")
    if exc.errno == errno.ENAMETOOLONG:
        return PathRejected(f"{path!r}: the name is too long for the file system")
    return exc
