"""16-bit PNG decoding: OpenCV keeps all 16 bits (Pillow reduces colour PNGs to 8)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from n3cli.io.image import ORIENTATION_TAG, Image, Metadata, orient

_SOURCE_MODES = {0: "L;16", 2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}


def decode_png16(data: bytes, ctype: int, name: str) -> Image:
    """Decode a 16-bit PNG of colour type ``ctype`` (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA)."""
    import cv2

    a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ValueError("OpenCV could not decode this PNG")
    if a.dtype != np.uint16:
        raise ValueError(f"expected 16-bit samples, got {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    alpha = None
    if a.shape[2] == 4:
        alpha = a[..., 3].astype(np.float32) / 65535.0
    if a.shape[2] >= 3:
        a = a[..., 2::-1]  # BGR -> RGB
        if ctype in (0, 4):  # OpenCV expands gray+alpha to BGRA
            a = a[..., :1]
    meta, orientation = _png_metadata(data)
    pixels = a.astype(np.float32) / 65535.0
    return Image(pixels=orient(pixels, orientation), alpha=orient(alpha, orientation), bit_depth=16,
                 format="png", source_mode=_SOURCE_MODES.get(ctype, "?;16"), metadata=meta)


def _png_metadata(data: bytes) -> tuple[Metadata, int]:
    """ICC, DPI, EXIF from the chunks before IDAT, without decoding pixels with Pillow."""
    img = PILImage.open(io.BytesIO(data))
    meta = Metadata(icc=img.info.get("icc_profile") or None)
    dpi = img.info.get("dpi")
    if dpi and all(float(d) > 0 for d in dpi):
        meta.dpi = (float(dpi[0]), float(dpi[1]))
    orientation = 1
    raw = img.info.get("exif")
    if raw:
        try:
            exif = PILImage.Exif()
            exif.load(raw)
            orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
            if ORIENTATION_TAG in exif:
                exif[ORIENTATION_TAG] = 1
            meta.exif = exif.tobytes()
        except Exception:  # unreadable EXIF is dropped, the pixels still count
            meta.exif, orientation = None, 1
    return meta, orientation if 1 <= orientation <= 8 else 1
