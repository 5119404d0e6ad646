"""autolog.raster: the palette raster that draws the evaluation plots and charts, checked pixel
by pixel, its text against Pillow's own drawing of the same font, and the charts drawn without
an imaging library."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from autolog import charts
from autolog.raster import LINE_HEIGHT, Raster, text_width


def _decode(png: bytes) -> tuple[int, int, bytes, bytes]:
    """(width, height, palette, indices) of an unfiltered 8-bit palette PNG."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    at, chunks = 8, {}
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        kind, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length:at + 12 + length])[0] == zlib.crc32(
            kind + data)
        chunks[kind] = chunks.get(kind, b"") + data
        at += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 3)
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[y * (width + 1):(y + 1) * (width + 1)] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, chunks[b"PLTE"], b"".join(row[1:] for row in rows)


def _at(raster: Raster, x: int, y: int) -> int:
    return raster.pixels[y * raster.width + x]


def test_a_rectangle_includes_both_corners_and_is_clipped():
    r = Raster(10, 8, 0)
    r.rectangle((2, 1, 5, 4), fill=3, outline=1)
    assert {(x, y) for y in range(8) for x in range(10) if _at(r, x, y)} == {
        (x, y) for x in range(2, 6) for y in range(1, 5)}
    assert [_at(r, x, 1) for x in range(2, 6)] == [1, 1, 1, 1]  # outline over the fill
    assert _at(r, 3, 2) == 3 and _at(r, 2, 3) == 1 and _at(r, 5, 3) == 1
    r.rectangle((-5, 6, 20, 30), fill=2)  # off the image on three sides: no error, clipped
    assert bytes(r.pixels[6 * 10:]) == bytes([2]) * 20


def test_an_outline_partly_off_the_image_is_its_four_sides_clipped():
    rng = random.Random(7)
    for _ in range(200):
        r = Raster(12, 9, 0)
        box = [rng.randint(-4, 15), rng.randint(-4, 12), rng.randint(-4, 15), rng.randint(-4, 12)]
        box[0], box[2] = sorted(box[0::2])
        box[1], box[3] = sorted(box[1::2])
        r.rectangle(box, outline=1)
        x0, x1 = (min(max(v, -1), 12) for v in box[0::2])
        y0, y1 = (min(max(v, -1), 9) for v in box[1::2])
        sides = {(x, y) for x in range(x0, x1 + 1) for y in (y0, y1)} | {
            (x, y) for x in (x0, x1) for y in range(y0, y1 + 1)}
        assert {(x, y) for y in range(9) for x in range(12) if _at(r, x, y)} == {
            (x, y) for x, y in sides if 0 <= x < 12 and 0 <= y < 9}, box


def test_a_line_is_a_connected_run_of_pixels_from_end_to_end():
    r = Raster(40, 30, 0)
    r.line([(1, 2), (30, 9), (12.4, 27.6)], 1)
    drawn = {(x, y) for y in range(30) for x in range(40) if _at(r, x, y)}
    assert {(1, 2), (30, 9), (12, 28)} <= drawn
    # each pixel touches another (8-connected), and a line of a slope under 1 has one a column
    assert all(any((x + dx, y + dy) in drawn for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                   if dx or dy) for x, y in drawn)
    first = [y for x, y in drawn if y <= 9 and x <= 30]
    assert len(first) == 30
    thick = Raster(40, 30, 0)
    thick.line([(1, 2), (30, 9)], 1, width=2)
    assert sum(thick.pixels) == 2 * 30  # each column gets the pixel below as well
    r.line([(5, 5)], 1)  # one point: nothing to join


def test_far_and_non_finite_coordinates_are_clipped_or_skipped_at_once():
    """A user's plot data can put a point a trillion pixels away, or at NaN: the raster clips
    the line to the image before walking it (not a trillion steps), and skips what it cannot
    place."""
    import time

    r = Raster(50, 20, 0)
    started = time.monotonic()
    r.line([(-1e12, 5), (1e12, 5)], 1)
    r.line([(25, -1e15), (25, 1e15)], 2)
    assert time.monotonic() - started < 1
    assert [_at(r, x, 5) for x in range(50) if x != 25] == [1] * 49
    assert [_at(r, 25, y) for y in range(20)] == [2] * 20
    r.line([(float("nan"), 3), (10, 3), (float("inf"), 8)], 3)
    r.line([(-100, -100), (-50, -80)], 3)  # wholly outside
    r.dot(float("nan"), 2, 3)
    r.text((float("inf"), 2), "x", 3)
    r.rectangle((0, float("nan"), 4, 4), fill=3)
    assert 3 not in r.pixels
    r.rectangle((-1e9, 10, 1e9, 10), fill=4)
    assert bytes(r.pixels[10 * 50:11 * 50]) == bytes([4]) * 50


def test_a_dot_is_three_pixels_square_and_clipped_at_the_edge():
    r = Raster(6, 6, 0)
    r.dot(2.4, 2.6, 1)
    assert {(x, y) for y in range(6) for x in range(6) if _at(r, x, y)} == {
        (x, y) for x in (1, 2, 3) for y in (2, 3, 4)}
    r.dot(0, 0, 2)
    assert _at(r, 0, 0) == 2 and _at(r, 1, 1) == 2


def test_text_is_drawn_within_its_line_and_as_wide_as_it_says():
    r = Raster(200, 20, 0)
    r.text((3, 2), "ROC curve (AUC 0.912)", 1)
    drawn = [(x, y) for y in range(20) for x in range(200) if _at(r, x, y)]
    assert min(x for x, _ in drawn) >= 3 and max(x for x, _ in drawn) < 3 + text_width(
        "ROC curve (AUC 0.912)")
    assert min(y for _, y in drawn) >= 2 and max(y for _, y in drawn) < 2 + LINE_HEIGHT
    assert text_width("") == 0 and text_width("ab") == text_width("a") + text_width("b")
    assert text_width("é") == text_width("?")  # outside ASCII: drawn as ?



def test_text_at_the_edges_is_the_same_text_clipped():
    """Text wholly inside the image is drawn a faster way than text that crosses an edge: at
    every place along and across the edges, both draw what the other would, cropped."""
    words = "x(AUC 0.912),/"  # x reaches a pixel left of its pen
    width, height = text_width(words) + 20, 20
    for x in range(-text_width(words) - 2, width + 2):
        for y in range(-LINE_HEIGHT - 1, height + 2):
            small = Raster(width, height, 0)
            small.text((x, y), words, 1)
            big = Raster(width + 200, height + 40, 0)
            big.text((x + 100, y + 20), words, 1)
            cropped = b"".join(big.pixels[(row + 20) * big.width + 100:][:width]
                               for row in range(height))
            assert bytes(small.pixels) == cropped, (x, y)

def _pillow_font():
    pil = pytest.importorskip("PIL")
    from PIL import ImageFont

    from autolog.raster import GLYPHS_FROM

    if pil.__version__.split(".")[0] != GLYPHS_FROM.split(".")[0]:
        pytest.skip(f"the glyphs come from Pillow {GLYPHS_FROM}'s font ({pil.__version__} here)")
    font = ImageFont.load_default()
    if not isinstance(font, ImageFont.FreeTypeFont):
        pytest.skip("Pillow < 10.1: its default font is not the one the glyphs come from")
    return font


def test_each_glyph_is_the_pixels_pillow_draws_and_lines_are_as_wide_as_pillow_s():
    from PIL import Image, ImageDraw

    font = _pillow_font()
    for code in range(32, 127):
        image = Image.new("P", (24, 20), 0)
        ImageDraw.Draw(image).text((4, 3), chr(code), fill=1, font=font)
        mine = Raster(24, 20, 0)
        mine.text((4, 3), chr(code), 1)
        assert bytes(mine.pixels) == image.tobytes(), repr(chr(code))
    rng = random.Random(0)
    measure = ImageDraw.Draw(Image.new("P", (1, 1))).textlength
    for _ in range(200):
        line = "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(1, 30)))
        assert text_width(line) == measure(line, font=font), line


def test_the_png_holds_the_pixels_and_the_palette():
    r = Raster(5, 3, 2)
    r.rectangle((1, 1, 3, 1), fill=0)
    width, height, palette, indices = _decode(r.png(bytes([255, 255, 255, 0, 0, 0, 9, 9, 9])))
    assert (width, height, palette[:3]) == (5, 3, b"\xff\xff\xff")
    assert indices == bytes([2] * 5 + [2, 0, 0, 0, 2] + [2] * 5)


PLOT_DATA = {
    "roc_curve": {"fpr": [0.0, 0.1, 0.4, 1.0], "tpr": [0.0, 0.6, 0.9, 1.0], "auc": 0.85,
                  "positive": 1},
    "precision_recall_curve": {"recall": [0.0, 0.5, 1.0], "precision": [1.0, 0.8, 0.5],
                               "average_precision": 0.8, "positive": 1},
    "confusion_matrix": {"labels": ["cat", "dog"], "matrix": [[9, 1], [2, 8]]},
    "predicted_vs_true": {"true": [0.0, 1.0, 2.5], "predicted": [0.2, 0.9, 2.0]},
    "residuals": {"predicted": [0.2, 0.9, 2.0], "residual": [-0.2, 0.1, 0.5]},
}


@pytest.mark.parametrize("plot", sorted(charts.PLOTS))
def test_every_plot_is_drawn_with_its_frame_text_and_data(plot):
    width, height, palette, indices = _decode(charts.draw(plot, PLOT_DATA[plot]))
    assert (width, height) == (charts.WIDTH, charts.HEIGHT) and palette == charts.PALETTE_BYTES
    counts = {index: indices.count(index) for index in set(indices)}
    assert counts[charts.WHITE] > width * height // 2
    assert counts[charts.BLACK] > 300  # the title, axes and labels
    if plot == "confusion_matrix":
        # the cells' shades: 9 of 10 and 8 of 10 on the diagonal, 1 and 2 of 10 off it
        shades = {index - 16 for index in counts if index >= 16}
        assert shades == {round(199 * share) for share in (0.9, 0.1, 0.2, 0.8)}
    elif plot.endswith("curve"):
        assert counts[charts.BLUE] > 300  # the curve, 2 pixels thick across the plot
    else:
        assert counts[charts.BLUE] == 3 * 9  # three points, apart


def test_a_plot_is_drawn_without_any_imaging_library(tmp_path: Path):
    code = ("import sys\nfrom autolog import charts\n"
            "data = {'labels': [0, 1], 'matrix': [[3, 1], [0, 4]]}\n"
            "png = charts.draw('confusion_matrix', data)\n"
            "assert png.startswith(b'\\x89PNG')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PIL', 'numpy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
