"""16-bit PNG, both ways, through imagecodecs (libpng).

Pillow reduces 16-bit colour PNGs to 8 bits, so 16-bit PNGs never go through it. Chosen
by measurement (``python bench/png16.py``): on a 2000x1500 RGB 16-bit image imagecodecs
decodes a libpng-written file ~30x faster than pure-Python pypng and encodes ~2x faster,
for a tenth of OpenCV's install size. Metadata chunks (iCCP, pHYs, eXIf), which libpng's
simple encoder does not take, are read by Pillow from the header (no pixels decoded) and
written by :mod:`n3cli.io.png_chunks`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from n3cli.io.image import Image, Metadata, orient
from n3cli.io.pillow_codec import pillow_metadata
from n3cli.io.png_chunks import add_metadata, pixel_chunks_only

_SOURCE_MODES = {0: "L;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}


def decode_png16(data: bytes, ctype: int) -> Image:
    """Decode a 16-bit PNG of colour type ``ctype`` (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA).

    A tRNS colour key becomes an alpha channel (libpng expands it), so transparency is kept.
    """
    import imagecodecs

    a = imagecodecs.png_decode(pixel_chunks_only(data))
    if a.dtype != np.uint16:
        raise ValueError(f"expected 16-bit samples, got {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    alpha = None
    if a.shape[2] in (2, 4):  # gray+alpha, RGBA
        alpha = a[..., -1].astype(np.float32) / 65535.0
        a = a[..., :-1]
    # Header chunks only (ICC, DPI, EXIF before IDAT): Pillow never decodes these pixels.
    meta, orientation = pillow_metadata(PILImage.open(io.BytesIO(data)), header_only=True)
    pixels = a.astype(np.float32) / 65535.0
    return Image(pixels=orient(pixels, orientation), alpha=orient(alpha, orientation), bit_depth=16,
                 format="png", source_mode=_SOURCE_MODES.get(ctype, "?;16"), metadata=meta)


def encode_png16(a: np.ndarray, alpha: np.ndarray | None, meta: Metadata) -> bytes:
    """PNG bytes of uint16 H x W x C samples (C = 1 or 3) plus optional uint16 alpha."""
    import imagecodecs

    if alpha is not None:
        a = np.concatenate([a, alpha[..., None]], axis=2)
    if a.shape[2] == 1:
        a = a[..., 0]
    data = imagecodecs.png_encode(np.ascontiguousarray(a, dtype=np.uint16))
    return add_metadata(bytes(data), icc=meta.icc, dpi=meta.dpi, exif=meta.exif)
