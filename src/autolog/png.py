"""PNG encoders: for ``uint8`` pixel arrays (numpy and zlib, no imaging library needed), and
for palette images (zlib only).

Each row of an array is stored with PNG's "Up" filter (the difference from the row above), which
compresses plots and photos several times better than unfiltered rows for the same zlib level,
and costs one vectorised subtraction. Palette rows are stored unfiltered, as PNG recommends.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

__all__ = ["encode_palette_png", "encode_png"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: channels -> PNG colour type: grey, grey + alpha, RGB, RGBA
COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
PALETTE_TYPE = 3
NONE, UP = 0, 2


def encode_png(pixels: Any, level: int = 6) -> bytes:
    """``pixels``: a ``uint8`` array of shape HxW (grey) or HxWxC with C in 1..4."""
    import numpy as np

    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, channels = array.shape
    rows = array.reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), dtype=np.uint8)
    filtered[:, 0] = UP
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 arithmetic wraps mod 256
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    return b"".join((SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib.compress(filtered.tobytes(), level)),
                     _chunk(b"IEND", b"")))


def encode_palette_png(indices: bytes, width: int, height: int, palette: bytes,
                       level: int = 1) -> bytes:
    """A palette image: ``indices``, one byte a pixel, row after row (Pillow's ``tobytes()`` of a
    "P" image), and ``palette``, RGB triples (at most 256)."""
    if len(indices) != width * height:
        raise ValueError(f"{len(indices)} pixels for a {width}x{height} image")
    if not palette or len(palette) % 3 or len(palette) > 768:
        raise ValueError(f"a palette is 1 to 256 RGB triples, got {len(palette)} bytes")
    filter_byte = bytes((NONE,))
    raw = b"".join(filter_byte + indices[row * width:(row + 1) * width] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, PALETTE_TYPE, 0, 0, 0)
    return b"".join((SIGNATURE, _chunk(b"IHDR", header), _chunk(b"PLTE", palette),
                     _chunk(b"IDAT", zlib.compress(raw, level)), _chunk(b"IEND", b"")))


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
