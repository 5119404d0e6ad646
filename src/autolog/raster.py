"""A small palette raster: filled and outlined rectangles, lines, dots and text, in pure Python,
encoded by :mod:`autolog.png`. It draws autolog's evaluation plots and charts.

An imaging library costs more than the drawing: Pillow's import is 10-15 ms (``PIL.Image``
alone loads its EXIF and TIFF tag tables) and its first ``save`` imports five image plugins,
all on the exit path of a short script, where the plots are drawn. A plot here is a few
thousand pixel writes and a few hundred row slices, about a millisecond, and plots are drawn
wherever autolog runs, Pillow or not.

Text is Pillow's default font (Aileron Regular, CC0, 10 px): each glyph as Pillow draws it alone
on a palette image (not anti-aliased), placed one after another at their advances, so a line
is as wide as Pillow's ``ImageDraw.textlength`` says (a glyph after one that reaches left of
its pen, like ``x``, can sit a pixel right of where Pillow puts it). ``tools/make_glyphs.py``
made the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import pairwise
from math import isfinite

from .png import encode_palette_png

__all__ = ["LINE_HEIGHT", "Raster", "text_width"]

#: from the top of a line of text to its baseline's descenders: what a row of text takes
LINE_HEIGHT = 12
#: the Pillow release whose default font the table below was made from
GLYPHS_FROM = "13.0.0"
#: printable ASCII (32-126), each ``|`` then five base-36 digits (advance, x offset + 1, y
#: offset, width and height of the glyph's box) then its rows, three hex digits each
GLYPHS = (
    "|21a20|31238400400400400400000000400|41248600600600000000000000000|6126828030030078050078050"
    "0600|7117a100380540540700180140540380100|912987205405407800f0150250270|712783804004403e04404"
    "404403c0|31238400400400000000000000000|4114a000200400400400400400400200200|3014a000800400400"
    "400400400400800800|71575100540380280000|714761001007c0100100000|20932400800|31634c0000000000"
    "0|31931400|30259200200400400400800800800800|612683806c04404404404406c0380|612683005001001001"
    "00100100100|61268300480080080100200400f80|61268700880080300080880880700|61268080180280280480"
    "fc0080080|61268780800800b00c80080880700|61268380240440780440440440380|61268f8008010010020020"
    "0400400|61268380440440380440440440380|612683804404404403c0440480380|31436400000000000000400|"
    "31437400000000000000400800|61466000180600400300080|61565780000780000000|61466000600180080300"
    "400|61268300480480080100100000100|a12a90e03102e85285285485b02001e0|6127810030028048078044044"
    "0840|712787804404404807c0440440780|812881c02204204004004202203c0|812887804404204204204204407"
    "80|612687c04004004007804004007c0|612687c0400400400780400400400|812881c02604204004e04202603a0"
    "|812884204204204207e0420420420|31238400400400400400400400400|61268080080080080080480480300|6"
    "1278440480500500700500480440|612684004004004004004004007c0|91298630630630550550550590490|712"
    "786406406405405405404c04c0|912981c02204104104104102201c0|71278780440440440780400400400|91299"
    "1c02204104104104102201f0000|712787804404404407804c0440440|712783804404002001c0040440380|6127"
    "87c0100100100100100100100|71278440440440440440440440380|61278840440440480280280300100|a12a88"
    "c84c84c8548550530330230|61278440480280300300280480440|61278440440280280100100100100|712787c0"
    "0400801001002004007c0|4114a600400400400400400400400400600|30259800800800400400400400200200|3"
    "014ac00400400400400400400400400c00|61367000300500500480000000|51a51f80|313374000000000000000"
    "00000|61466380480180680480780|71278400400780440440440440780|61466380440400400440380|71278040"
    "0403c04404404404403c0|714763804407c0400440380|31149200400400e00400400400400400|714783c044044"
    "04404403c0440380|71278400400780640440440440440|31238400000400400400400400400|3123a4000004004"
    "00400400400400400c00|61268400400480500600500500480|31238400400400400400400400600|91496770490"
    "490490490490|71476780640440440440440|71476380440440440440380|71478780440440440440780400400|7"
    "14783c04404404404403c0040040|41446700400400400400400|61466700480600180480780|31238400400e004"
    "00400400400600|714764404404404404c03c0|51466880880500500500200|814869909a05a06a0660240|50466"
    "900500200600500900|51468880880500500500200200400|61466780080100200400780|3113a60040040040040"
    "0400400400400600|3113b400400400400400400400400400400400|3113ac00400400400400400400400400c00|"
    "61664680580000000"
)

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


class Raster:
    """A ``width`` x ``height`` image of palette indices, all ``background`` at first.

    Coordinates are pixels from the top left, floats rounded; a box includes both corners, as
    Pillow's do. What falls outside the image is clipped (a line first, so a point a million
    pixels away costs no more than one at the edge); what has a NaN or infinite coordinate is
    not drawn.
    """

    def __init__(self, width: int, height: int, background: int = 0):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes((background,)) * (width * height))

    def rectangle(self, box: Sequence[float], fill: int | None = None,
                  outline: int | None = None) -> None:
        if not all(isfinite(v) for v in box):
            return
        x0, x1 = (round(min(max(v, -1.0), self.width)) for v in box[0::2])
        y0, y1 = (round(min(max(v, -1.0), self.height)) for v in box[1::2])
        if fill is not None:
            self._fill(x0, x1, y0, y1, fill)
        if outline is not None:
            self._row(x0, x1, y0, outline)
            self._row(x0, x1, y1, outline)
            self._column(x0, y0 + 1, y1 - 1, outline)
            self._column(x1, y0 + 1, y1 - 1, outline)

    def line(self, points: Sequence[tuple[float, float]], color: int, width: int = 1) -> None:
        """A polyline through ``points``; ``width`` 2 thickens it across its main direction."""
        right, bottom, thick = self.width, self.height, width > 1
        inside: tuple[int, int, int, int] | None
        for (ax, ay), (bx, by) in pairwise(points):
            if -1 <= ax <= right and -1 <= bx <= right and -1 <= ay <= bottom and \
                    -1 <= by <= bottom:  # nothing to clip (False for NaN): what _clip rounds
                inside = (round(ax), round(ay), round(ax + (bx - ax)), round(ay + (by - ay)))
            else:
                inside = self._clip(ax, ay, bx, by)
            if inside is not None:
                self._segment(*inside, color, thick)

    def dot(self, x: float, y: float, color: int) -> None:
        """A 3 x 3 pixel dot (a scatter plot's point)."""
        if not (isfinite(x) and isfinite(y)):
            return
        cx, cy = round(x), round(y)
        for row in (cy - 1, cy, cy + 1):
            self._row(cx - 1, cx + 1, row, color)

    def text(self, xy: tuple[float, float], text: str, color: int) -> None:
        """``text`` with its line's top left at ``xy`` (characters outside ASCII drawn as ?)."""
        if not (isfinite(xy[0]) and isfinite(xy[1])):
            return
        pen, top = round(xy[0]), round(xy[1])
        # a glyph's pixels lie from a pixel left of its pen to its advance, within its line
        if 1 <= pen <= self.width - text_width(text) and \
                0 <= top <= self.height - LINE_HEIGHT:  # within the image, as most text is
            pixels, ink = self.pixels, bytes((color,)) * self.width
            offsets = _glyph_offsets(self.width)
            at = top * self.width + pen
            for char in text:
                advance, spans = offsets.get(char) or offsets["?"]
                for offset, length in spans:
                    pixels[at + offset:at + offset + length] = ink[:length]
                at += advance
            return
        glyphs = _glyphs()
        for char in text:
            advance, runs = glyphs.get(char) or glyphs["?"]
            for dx, dy, length in runs:
                self._row(pen + dx, pen + dx + length - 1, top + dy, color)
            pen += advance

    def png(self, palette: bytes) -> bytes:
        """The image as PNG: ``palette`` gives the colours of indices 0, 1, ... (RGB triples)."""
        return encode_palette_png(bytes(self.pixels), self.width, self.height, palette)

    def _row(self, x0: int, x1: int, y: int, color: int) -> None:
        if not 0 <= y < self.height:
            return
        x0, x1 = max(x0, 0), min(x1, self.width - 1)
        if x0 <= x1:
            start = y * self.width
            self.pixels[start + x0:start + x1 + 1] = bytes((color,)) * (x1 - x0 + 1)

    def _fill(self, x0: int, x1: int, y0: int, y1: int, color: int) -> None:
        x0, x1 = max(x0, 0), min(x1, self.width - 1)
        y0, y1 = max(y0, 0), min(y1, self.height - 1)
        if x0 <= x1 and y0 <= y1:
            pixels, width, ink = self.pixels, self.width, bytes((color,)) * (x1 - x0 + 1)
            for start in range(y0 * width + x0, y1 * width + x0 + 1, width):
                pixels[start:start + len(ink)] = ink

    def _column(self, x: int, y0: int, y1: int, color: int) -> None:
        if not 0 <= x < self.width:
            return
        y0, y1 = max(y0, 0), min(y1, self.height - 1)
        if y0 <= y1:  # one slice with the row length as its step
            self.pixels[y0 * self.width + x:y1 * self.width + x + 1:self.width] = \
                bytes((color,)) * (y1 - y0 + 1)

    def _clip(self, ax: float, ay: float, bx: float, by: float
              ) -> tuple[int, int, int, int] | None:
        """The segment's part within a pixel of the image (Liang-Barsky), rounded; None when
        none of it is, or a coordinate is not finite."""
        if not (isfinite(ax) and isfinite(ay) and isfinite(bx) and isfinite(by)):
            return None
        low, high = 0.0, 1.0
        dx, dy = bx - ax, by - ay
        for p, q in ((-dx, ax + 1), (dx, self.width - ax), (-dy, ay + 1),
                     (dy, self.height - ay)):
            if p == 0:
                if q < 0:
                    return None
                continue
            t = q / p
            if p < 0:
                low = max(low, t)
            else:
                high = min(high, t)
            if low > high:
                return None
        return (round(ax + low * dx), round(ay + low * dy), round(ax + high * dx),
                round(ay + high * dy))

    def _segment(self, x0: int, y0: int, x1: int, y1: int, color: int, thick: bool) -> None:
        """Bresenham's line; thick adds the pixel below (mostly horizontal) or to the right."""
        pixels, width, height = self.pixels, self.width, self.height
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        ax, ay = (0, 1) if dx >= -dy else (1, 0)
        error = dx + dy
        while True:  # pixels set inline: a curve is thousands of them
            if 0 <= x0 < width and 0 <= y0 < height:
                pixels[y0 * width + x0] = color
            if thick and 0 <= x0 + ax < width and 0 <= y0 + ay < height:
                pixels[(y0 + ay) * width + x0 + ax] = color
            if x0 == x1 and y0 == y1:
                return
            twice = 2 * error
            if twice >= dy:
                error += dy
                x0 += sx
            if twice <= dx:
                error += dx
                y0 += sy


def text_width(text: str) -> int:
    """How many pixels wide :meth:`Raster.text` draws ``text``."""
    glyphs = _glyphs()
    return sum((glyphs.get(char) or glyphs["?"])[0] for char in text)


@cache
def _glyph_offsets(width: int) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """:func:`_glyphs` for an image ``width`` pixels wide: each run as (offset from the pen's
    pixel on the line's top row, length)."""
    return {char: (advance, [(dy * width + dx, length) for dx, dy, length in runs])
            for char, (advance, runs) in _glyphs().items()}


@cache
def _glyphs() -> dict[str, tuple[int, list[tuple[int, int, int]]]]:
    """Each character's advance and its pixels as runs along rows: (x, y, length)."""
    table = {}
    for code, entry in enumerate(GLYPHS.split("|")[1:], start=32):
        advance, left, top, width, height = (_DIGITS.index(d) for d in entry[:5])
        runs = []
        for j in range(height):
            bits = int(entry[5 + 3 * j:8 + 3 * j], 16)
            i = 0
            while i < width:
                if bits >> (11 - i) & 1:
                    start = i
                    while i < width and bits >> (11 - i) & 1:
                        i += 1
                    runs.append((left - 1 + start, top + j, i - start))
                else:
                    i += 1
        table[chr(code)] = (advance, runs)
    return table
