"""Print ``autolog.raster``'s glyph table: printable ASCII in Pillow's default font (Aileron
Regular, CC0, at 10 px: Pillow 10.1+'s ``ImageFont.load_default()``) as drawn on a palette
image, where text is not anti-aliased.

    python tools/make_glyphs.py      # then paste the string into src/autolog/raster.py
                                     # and set GLYPHS_FROM to the Pillow version it prints

Each glyph is ``|`` then five base-36 digits (advance, x offset of its box plus 1, y offset,
box width and height) then its box's rows, three hex digits each, the leftmost pixel the highest
bit.
"""

from PIL import ImageFont


def main() -> None:
    font = ImageFont.load_default()
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise SystemExit("needs Pillow 10.1+ (its default font is Aileron)")
    table = []
    for code in range(32, 127):
        mask, (x, y) = font.getmask2(chr(code), mode="1")
        width, height = mask.size
        advance = font.getlength(chr(code), mode="1")
        if advance != int(advance) or width > 12:
            raise SystemExit(f"{chr(code)!r}: advance {advance}, width {width}")
        rows = []
        for j in range(height):
            bits = 0
            for i in range(width):
                bits = bits << 1 | (mask.getpixel((i, j)) > 0)
            rows.append(f"{bits << (12 - width):03x}")
        digits = [int(advance), x + 1, y, width, height]
        table.append("".join("0123456789abcdefghijklmnopqrstuvwxyz"[d] for d in digits)
                     + "".join(rows))
    import PIL

    print(f"# Pillow {PIL.__version__}")
    text = "|" + "|".join(table)
    for start in range(0, len(text), 92):
        print(f'    "{text[start:start + 92]}"')


if __name__ == "__main__":
    main()
