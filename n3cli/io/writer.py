"""Writing images: same bit depth and channels as the input where the format allows,
metadata carried over, always through :func:`n3cli.io.atomic.atomic_write`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from n3cli.errors import ImageWriteError, N3Error
from n3cli.io.atomic import atomic_write
from n3cli.io.formats import format_for_extension, normalize_format
from n3cli.io.image import Image, Metadata

JPEG_QUALITY = 95
# Bit depths each format stores (float only in TIFF).
_DEPTHS = {"png": (8, 16), "tiff": (8, 16, 32), "jpeg": (8,), "bmp": (8,), "webp": (8,)}
_ALPHA = {"png", "tiff", "bmp", "webp"}
_PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "webp": "WEBP"}


def quantize(x: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] -> uint8/uint16 (clipped, rounded); bit_depth 32 keeps float32."""
    if bit_depth == 32:
        return np.ascontiguousarray(x, dtype=np.float32)
    top = 255 if bit_depth == 8 else 65535
    q = np.rint(np.clip(x, 0.0, 1.0) * top)
    return q.astype(np.uint8 if bit_depth == 8 else np.uint16)


def write_image(path: Path | str, image: Image, fmt: str | None = None, quality: int = JPEG_QUALITY,
                strip_metadata: bool = False) -> list[str]:
    """Encode ``image`` to ``path`` atomically; returns notes on anything the format lost.

    ``fmt`` defaults to the one implied by the extension (PNG if none).
    """
    path = Path(path)
    fmt = normalize_format(fmt) if fmt else (format_for_extension(path) or "png")
    notes: list[str] = []
    depth = image.bit_depth
    if depth not in _DEPTHS[fmt]:
        new = 16 if (depth == 32 and fmt == "png") else 8
        notes.append(f"{'float' if depth == 32 else f'{depth}-bit'} samples written as {new}-bit "
                     f"({fmt.upper()} cannot store {'float' if depth == 32 else f'{depth}-bit'})")
        depth = new
    alpha = image.alpha
    if alpha is not None and fmt not in _ALPHA:
        notes.append(f"alpha channel dropped ({fmt.upper()} has none)")
        alpha = None
    meta = Metadata() if strip_metadata else image.metadata
    if fmt == "tiff" and meta.exif:
        meta = replace(meta, exif=None)  # tifffile writes no EXIF IFD: say so, do not fake it
        notes.append("EXIF not carried into TIFF (ICC profile and DPI are)")
    pixels = image.pixels
    if depth == 32 and image.unit_range:
        pixels = np.clip(pixels, 0.0, 1.0)  # the source stayed in [0, 1]: so does the output
    a = quantize(pixels, depth)
    al = quantize(alpha, depth) if alpha is not None else None

    def write(tmp: str) -> None:
        if fmt == "tiff":
            from n3cli.io.tiff import encode_tiff
            encode_tiff(tmp, a, al, meta)
        elif fmt == "png" and depth == 16:
            from n3cli.io.png16 import encode_png16  # imagecodecs: imported when needed
            Path(tmp).write_bytes(encode_png16(a, al, meta))
        else:
            _save_pillow(tmp, a, al, fmt, meta, quality)

    try:
        atomic_write(path, write)
    except N3Error:
        raise
    except Exception as err:  # encoder failure: still one line naming the file
        raise ImageWriteError(f"{path}: cannot encode {fmt.upper()}: {err}") from err
    return notes


def _save_pillow(tmp: str, a: np.ndarray, alpha: np.ndarray | None, fmt: str, meta: Metadata,
                 quality: int) -> None:
    if alpha is not None:
        a = np.concatenate([a, alpha[..., None]], axis=2)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    img = PILImage.fromarray(a[..., 0] if a.shape[2] == 1 else a, mode=mode)
    if fmt == "bmp" and mode == "LA":
        img = img.convert("RGBA")  # BMP has no gray+alpha layout
    kw: dict = {}
    if meta.icc:
        kw["icc_profile"] = meta.icc
    if meta.dpi:
        kw["dpi"] = tuple(float(d) for d in meta.dpi)
    if meta.exif and fmt in ("png", "jpeg", "webp"):
        kw["exif"] = meta.exif
    if fmt == "jpeg":
        kw.update(quality=quality, subsampling=0)  # 4:4:4: keep the chroma detail we restored
    elif fmt == "webp":
        kw.update(quality=quality)
    img.save(tmp, format=_PIL_NAMES[fmt], **kw)
