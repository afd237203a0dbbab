"""Writing images: same bit depth and channels as the input where the format allows,
metadata carried over, always through :func:`n3cli.io.atomic.atomic_write`."""

from __future__ import annotations

import io
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
# Formats whose alpha n3 (and other readers) get back: Pillow writes a 32-bit BMP without
# the header's alpha mask, which readers take as RGB, so BMP gets none.
_ALPHA = {"png", "tiff", "webp"}
_PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "webp": "WEBP"}
# Largest width or height each format can hold (libjpeg, libwebp); the others are 2^31.
MAX_SIDE = {"jpeg": 65500, "webp": 16383}
_EXIF_IFD, _PIXEL_X, _PIXEL_Y = 0x8769, 0xA002, 0xA003
_X_RES, _Y_RES, _RES_UNIT, _INCH = 0x011A, 0x011B, 0x0128, 2


def check_output_size(path: Path | str, fmt: str | None, width: int, height: int) -> None:
    """Refuse, before any work, an output larger than its format can hold."""
    fmt = normalize_format(fmt) if fmt else (format_for_extension(path) or "png")
    top = MAX_SIDE.get(fmt)
    if top and max(width, height) > top:
        raise ImageWriteError(f"{path}: {fmt.upper()} holds at most {top:,} pixels per side, the output "
                              f"is {width}x{height}: write PNG or TIFF instead (-o NAME.png or --format png)")


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
    check_output_size(path, fmt, image.width, image.height)
    notes: list[str] = []
    pixels = image.pixels
    depth = image.bit_depth
    if depth not in _DEPTHS[fmt]:
        new = 16 if (depth == 32 and fmt == "png") else 8
        notes.append(f"{'float' if depth == 32 else f'{depth}-bit'} samples written as {new}-bit "
                     f"({fmt.upper()} cannot store {'float' if depth == 32 else f'{depth}-bit'})")
        if depth == 32 and not image.unit_range and (pixels.min() < 0.0 or pixels.max() > 1.0):
            notes.append(f"values outside [0, 1] clipped ({fmt.upper()} stores integers; "
                         "a TIFF output keeps them)")
        depth = new
    alpha = image.alpha
    if alpha is not None and fmt not in _ALPHA:
        notes.append(f"alpha channel dropped ({fmt.upper()} has none that readers get back)")
        alpha = None
    elif alpha is not None and image.premultiplied and fmt != "tiff":
        # PNG and WebP store unassociated alpha: divide the colours back out.
        pixels = np.where(alpha[..., None] > 0, pixels / np.maximum(alpha[..., None], 1e-12), 0.0)
        notes.append(f"premultiplied colours un-premultiplied ({fmt.upper()} stores unassociated alpha)")
    if fmt == "webp" and not image.color:
        notes.append("gray written as RGB (WebP has no gray layout)")
    meta = Metadata() if strip_metadata else image.metadata
    if fmt == "tiff" and meta.exif:
        meta = replace(meta, exif=None)  # tifffile writes no EXIF IFD: say so, do not fake it
        notes.append("EXIF not carried into TIFF (ICC profile and DPI are)")
    if meta.exif or (fmt == "webp" and meta.dpi):  # WebP holds DPI in EXIF only
        meta = replace(meta, exif=exif_with_geometry(meta.exif, image.width, image.height, meta.dpi))
    if depth == 32 and image.unit_range:
        pixels = np.clip(pixels, 0.0, 1.0)  # the source stayed in [0, 1]: so does the output
    a = quantize(pixels, depth)
    al = quantize(alpha, depth) if alpha is not None else None

    def write(tmp: str) -> None:
        if fmt == "tiff":
            from n3cli.io.tiff import encode_tiff
            encode_tiff(tmp, a, al, meta, premultiplied=image.premultiplied and al is not None)
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
    # Encoded in memory, then written by Python: Pillow's encoders writing to the file
    # directly ignore a short write (a full disk left a truncated JPEG reported as done).
    buf = io.BytesIO()
    img.save(buf, format=_PIL_NAMES[fmt], **kw)
    with open(tmp, "wb") as f:
        f.write(buf.getbuffer())


def exif_with_geometry(exif: bytes | None, width: int, height: int,
                       dpi: tuple[float, float] | None = None) -> bytes | None:
    """``exif`` (or a new EXIF block, when there is none and ``dpi`` is given) whose
    PixelX/YDimension are the written size, where it has them, and whose X/YResolution are
    ``dpi``: they would otherwise contradict a rotated or upscaled output's other DPI field."""
    ex = PILImage.Exif()
    try:
        if exif:
            ex.load(exif)
        ifd = ex.get_ifd(_EXIF_IFD)
        if _PIXEL_X in ifd:
            ifd[_PIXEL_X] = width
        if _PIXEL_Y in ifd:
            ifd[_PIXEL_Y] = height
        if dpi:
            ex[_X_RES], ex[_Y_RES], ex[_RES_UNIT] = float(dpi[0]), float(dpi[1]), _INCH
        return ex.tobytes()
    except Exception:  # EXIF Pillow cannot parse is carried as it came
        return exif
