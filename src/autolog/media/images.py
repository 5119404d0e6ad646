"""Images: numpy arrays, tensors, PIL images, matplotlib figures and image files.

On the caller's thread an image is checked and copied as ``uint8`` or float pixels (a figure is
rendered to RGBA pixels: drawing must happen while the figure is as it was logged); on the
writer's it is scaled and encoded as PNG (:mod:`.png`). Accepted arrays: HxW (grey), HxWx1,
HxWx3 (RGB), HxWx4 (RGBA), and CxHxW with C in 1, 3, 4 (the torch convention); ``uint8``,
``bool``, integers within 0..255, and floats: within [0, 1] scaled by 255, within [0, 255] kept,
anything else stretched to 0..255 (recorded as ``normalized`` in the item's meta).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ..png import encode_png
from .events import MediaError, Prepared

__all__ = ["figure_pixels", "is_figure", "prepare_figure", "prepare_image", "to_pixels"]

MAX_PIXELS = 100_000_000
FILE_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp",
              ".bmp": "bmp"}


def prepare_image(image: Any) -> Prepared:
    """Check and copy ``image`` now; encode it as PNG on the writer's thread."""
    if isinstance(image, str | os.PathLike):
        return _prepare_file(Path(image))
    if is_figure(image):
        return prepare_figure(image)
    pixels = to_pixels(image)
    return Prepared(lambda stem: _write_png(pixels, stem), ".png", pixels.nbytes)


def prepare_figure(figure: Any) -> Prepared:
    if not is_figure(figure):
        raise MediaError(f"a matplotlib figure was expected, got {type(figure).__name__}")
    pixels = figure_pixels(figure)
    return Prepared(lambda stem: _write_png(pixels, stem), ".png", pixels.nbytes)


def is_figure(value: Any) -> bool:
    """A matplotlib ``Figure`` (or an ``Axes``, standing for its figure)."""
    module = type(value).__module__ or ""
    return module.startswith("matplotlib") and (hasattr(value, "savefig") or
                                                hasattr(getattr(value, "figure", None), "savefig"))


def figure_pixels(figure: Any) -> Any:
    """The figure drawn now, as RGBA pixels, without touching its canvas or pyplot's state."""
    import numpy as np

    figure = figure if hasattr(figure, "savefig") else figure.figure
    buffer = io.BytesIO()
    figure.savefig(buffer, format="rgba", dpi=figure.dpi)
    width, height = (int(v * figure.dpi) for v in figure.get_size_inches())
    raw = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
    if raw.size != width * height * 4:  # a layout engine changed the size: ask the renderer
        width, height = (int(v) for v in figure.bbox.size)
    return raw.reshape(height, width, 4).copy()


def to_pixels(image: Any) -> Any:
    """A copy of ``image`` as a HxW or HxWxC (C in 3, 4) array of ``uint8`` or floats."""
    import numpy as np

    array = _as_array(image)
    if array.dtype == object or array.dtype.kind not in "buif":
        raise MediaError(f"an image needs numbers, got an array of {array.dtype}")
    array = _channels_last(array)
    if array.size == 0 or array.size > MAX_PIXELS * 4:
        raise MediaError(f"an image of shape {tuple(array.shape)} is empty or too large "
                         f"(at most {MAX_PIXELS:,} pixels)")
    if array.dtype == np.uint8:
        return array.copy()
    if array.dtype.kind == "b":
        return array.astype(np.uint8) * 255
    if array.dtype.kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise MediaError(f"integer pixels must be within 0..255, these span {low}..{high}")
        return array.astype(np.uint8)
    return array.astype(np.float32 if array.dtype.itemsize <= 4 else np.float64)


def _as_array(image: Any) -> Any:
    import numpy as np

    if _is_pil(image):
        mode = image.mode
        if mode not in ("L", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in mode or mode == "P" else "RGB")
        return np.asarray(image)
    detach = getattr(image, "detach", None)
    if callable(detach):  # torch: to host memory (an explicit log: the sync is expected)
        tensor = detach().cpu()
        if str(tensor.dtype) in ("torch.bfloat16", "torch.float16"):
            tensor = tensor.float()
        return tensor.numpy()
    try:
        return np.asarray(image)
    except Exception as exc:
        raise MediaError(f"{type(image).__name__} is not an image: {exc}")


def _is_pil(value: Any) -> bool:
    return (type(value).__module__ or "").startswith("PIL.") and hasattr(value, "mode")


def _channels_last(array: Any) -> Any:
    shape = tuple(array.shape)
    if array.ndim == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)  # CxHxW
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[:, :, 0]
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4)):
        return array
    raise MediaError(f"an image must be HxW, HxWx1, HxWx3 or HxWx4 (or CxHxW), got shape "
                     f"{shape}")


def _write_png(pixels: Any, stem: Path) -> tuple[dict[str, Path], dict[str, Any]]:
    meta: dict[str, Any] = {}
    if pixels.dtype.kind == "f":
        pixels, meta["normalized"] = _scaled(pixels)
        if not meta["normalized"]:
            del meta["normalized"]
    path = stem.parent / f"{stem.name}.png"
    path.write_bytes(encode_png(pixels))
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return {"path": path}, {"width": int(width), "height": int(height),
                            "channels": int(channels), "format": "png", **meta}


def _scaled(pixels: Any) -> tuple[Any, bool]:
    """Float pixels as ``uint8``: [0, 1] scaled, [0, 255] kept, other ranges stretched."""
    import numpy as np

    pixels = np.nan_to_num(pixels, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(pixels.min()), float(pixels.max())
    if low >= 0.0 and high <= 1.0:
        return np.rint(pixels * 255.0).astype(np.uint8), False
    if low >= 0.0 and high <= 255.0:
        return np.rint(pixels).astype(np.uint8), False
    span = high - low or 1.0
    return np.rint((pixels - low) * (255.0 / span)).astype(np.uint8), True


def _prepare_file(source: Path) -> Prepared:
    kind = FILE_TYPES.get(source.suffix.lower())
    if kind is None:
        raise MediaError(f"{str(source)!r} is not an image file autolog knows "
                         f"({', '.join(sorted(FILE_TYPES))})")
    try:
        data = source.read_bytes()  # the file as it is now: the caller may change it next
    except OSError as exc:
        raise MediaError(f"cannot read {str(source)!r}: {exc.strerror or exc}")

    def write(stem: Path) -> tuple[dict[str, Path], dict[str, Any]]:
        path = stem.parent / f"{stem.name}{source.suffix.lower()}"
        path.write_bytes(data)
        return {"path": path}, {"format": kind, "source": source.name}

    return Prepared(write, source.suffix.lower(), len(data))
