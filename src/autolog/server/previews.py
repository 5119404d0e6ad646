"""Artifact previews: images and text shown inline, safely; anything else is refused (415).

Only types a browser renders without running anything: PNG, JPEG, GIF, WebP and BMP as themselves
(checked by their magic bytes, not by the name alone), and text files as ``text/plain`` (never
HTML, never SVG), cut at 2 MiB with ``X-Truncated: true``. Every preview carries ``nosniff`` and
``Content-Security-Policy: sandbox``, so even a file that lies about its type cannot script.

A text preview from a byte ``offset`` (negative: from the end) holds whole lines only, at most
2 MiB of them, and says where they start and end in the file (``X-Offset``, ``X-End``), the
file's size and identity (``X-File-Size``, ``X-File-Id``): a page follows a growing log with it
(``console.log``), asking each time from where the last answer ended, and starts over from the
end when the file was replaced or cut.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import FileResponse, Response

__all__ = ["CONTENT", "TEXT_LIMIT", "preview"]

TEXT_LIMIT = 2 * 1024 * 1024
IMAGES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
          ".webp": "image/webp", ".bmp": "image/bmp"}
TEXT = frozenset({".txt", ".log", ".json", ".csv", ".tsv", ".md", ".yaml", ".yml", ".py",
                  ".patch"})
_MAGIC = {"image/png": (b"\x89PNG\r\n\x1a\n",), "image/jpeg": (b"\xff\xd8\xff",),
          "image/gif": (b"GIF87a", b"GIF89a"), "image/webp": (b"RIFF",), "image/bmp": (b"BM",)}
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                "Cache-Control": "no-cache"}
CONTENT = {"text/plain": {"schema": {"type": "string"}},
           **{kind: {"schema": {"type": "string", "format": "binary"}}
              for kind in set(IMAGES.values())}}


def preview(path: Path, offset: int | None = None) -> Response:
    suffix = path.suffix.lower()
    if offset is not None:
        if suffix not in TEXT:
            # as any preview this file type has not: 415 (a property of the file, not a
            # request the OpenAPI document could call invalid)
            raise HTTPException(415, f"offset= reads the lines of a text file; {path.name} has "
                                "no text preview")
        return _lines_from(path, offset)
    if suffix in IMAGES:
        kind = IMAGES[suffix]
        with open(path, "rb") as f:
            head = f.read(12)
        if not head.startswith(_MAGIC[kind]) or (kind == "image/webp" and head[8:12] != b"WEBP"):
            raise HTTPException(415, f"{path.name} does not hold the {kind} its name says")
        return FileResponse(path, media_type=kind, headers=dict(SAFE_HEADERS))
    if suffix in TEXT:
        with open(path, "rb") as f:
            data = f.read(TEXT_LIMIT + 1)
        headers = dict(SAFE_HEADERS)
        if len(data) > TEXT_LIMIT:
            data = _cut(data[:TEXT_LIMIT])
            headers["X-Truncated"] = "true"
        return Response(data, media_type="text/plain; charset=utf-8", headers=headers)
    raise HTTPException(415, f"no preview for {suffix or 'files without an extension'}; "
                        "download it instead")


def _lines_from(path: Path, offset: int) -> Response:
    """The whole lines of the file from byte ``offset`` (negative: that many bytes before the
    end, from the next line's start), at most TEXT_LIMIT bytes of them."""
    with open(path, "rb") as f:
        info = os.fstat(f.fileno())
        start = max(0, info.st_size + offset) if offset < 0 else min(offset, info.st_size)
        if offset < 0 and start > 0:  # from the end: from the start of a line
            f.seek(start - 1)
            start += _to_line_start(f.read(TEXT_LIMIT))
        f.seek(start)
        data = f.read(TEXT_LIMIT)
    full = len(data) == TEXT_LIMIT
    last = data.rfind(b"\n")
    # a line still being written waits for the next request; one line longer than the limit
    # comes in parts
    data = data[:last + 1] if last >= 0 or not full else _cut(data)
    end = start + len(data)
    headers = {**SAFE_HEADERS, "X-Offset": str(start), "X-End": str(end),
               "X-File-Size": str(info.st_size), "X-File-Id": f"{info.st_dev:x}-{info.st_ino:x}"}
    if full:
        headers["X-Truncated"] = "true"
    return Response(data, media_type="text/plain; charset=utf-8", headers=headers)


def _to_line_start(data: bytes) -> int:
    """Bytes to skip to the start of the next line, when ``data`` begins with the byte before
    the offset."""
    cut = data.find(b"\n")
    return cut if cut >= 0 else len(data)


def _cut(data: bytes) -> bytes:
    """Cut at a UTF-8 character boundary, so the preview does not end in a broken character."""
    for back in range(min(4, len(data))):
        if (data[len(data) - 1 - back] & 0xC0) != 0x80:
            start = len(data) - 1 - back
            lead = data[start]
            need = 1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4
            return data if len(data) - start >= need else data[:start]
    return data
