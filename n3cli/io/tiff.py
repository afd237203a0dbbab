"""TIFF through tifffile: 8/16-bit and float samples, gray/RGB with alpha, ICC, DPI.

Layouts tifffile cannot hand over as plain gray/RGB (palette, CMYK, YCbCr, Lab, or a
compression that needs the optional imagecodecs package) fall back to Pillow.
"""

from __future__ import annotations

import io

import numpy as np

from n3cli.io.image import Image, Metadata, check_size, orient, oriented_dpi

_INCH, _CM = 2, 3


def decode_tiff(data: bytes, name: str, max_pixels: int | None, scale: int = 1) -> Image | None:
    """Decode the first page; None means "let Pillow try" (unusual layouts)."""
    import tifffile

    with tifffile.TiffFile(io.BytesIO(data)) as tf:
        if not tf.pages:
            raise ValueError("TIFF without pages")
        page = tf.pages.first
        h, w = int(page.imagelength), int(page.imagewidth)
        check_size(w, h, name, max_pixels, scale)
        photometric = int(page.photometric)
        if photometric not in (0, 1, 2):  # miniswhite, minisblack, rgb
            return None
        try:
            a = page.asarray()
        except (ValueError, NotImplementedError, KeyError) as err:
            if "imagecodecs" in str(err) or "compress" in str(err).lower():
                return None
            raise
        meta, orientation = _tiff_metadata(page)
        extra = page.tags.get(338)  # ExtraSamples: 1 associated (premultiplied) alpha, 2 unassociated
        extra_kinds = tuple(np.atleast_1d(extra.value).tolist()) if extra is not None else ()
        notes = [f"only the first of {len(tf.pages)} pages is used"] if len(tf.pages) > 1 else []
        samples, separate = int(page.samplesperpixel), int(page.planarconfig) == 2
    a = np.asarray(a)
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3 and separate and samples > 1 and a.shape[0] == samples:
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[:2] != (h, w):
        raise ValueError(f"unsupported TIFF layout {a.shape}")
    pixels, depth = _to_float(a)
    if photometric == 0:  # miniswhite: 0 is white
        pixels = (1.0 if depth != 32 else pixels.max()) - pixels
    color = photometric == 2
    base = 3 if color else 1
    if pixels.shape[2] < base:
        raise ValueError(f"{pixels.shape[2]} samples for a {'RGB' if color else 'gray'} TIFF")
    alpha = pixels[..., base] if pixels.shape[2] > base else None
    if pixels.shape[2] > base + 1:
        notes.append(f"{pixels.shape[2] - base - 1} extra channels dropped")
    pixels = np.ascontiguousarray(pixels[..., :base])
    mode = ("RGB" if color else "L") + ("A" if alpha is not None else "")
    unit = depth != 32 or bool(pixels.min() >= 0.0 and pixels.max() <= 1.0)
    return Image(pixels=orient(pixels, orientation), alpha=orient(alpha, orientation), bit_depth=depth,
                 format="tiff", source_mode=f"{mode};{depth if depth != 32 else 'F'}",
                 metadata=meta, notes=notes, unit_range=unit,
                 premultiplied=alpha is not None and extra_kinds[:1] == (1,))


def _to_float(a: np.ndarray) -> tuple[np.ndarray, int]:
    if a.dtype == np.bool_:
        return a.astype(np.float32), 8
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0, 8
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0, 16
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError("float TIFF contains NaN or infinite values")
        return a.astype(np.float32), 32
    raise ValueError(f"unsupported TIFF sample type {a.dtype}")


def _tiff_metadata(page) -> tuple[Metadata, int]:
    tags = page.tags
    meta = Metadata()
    icc = tags.get(34675)
    if icc is not None and icc.value:
        meta.icc = bytes(icc.value)
    xres, yres, unit = tags.get(282), tags.get(283), tags.get(296)
    unit = int(unit.value) if unit is not None else _INCH
    if xres is not None and yres is not None and unit in (_INCH, _CM):
        def val(v):
            return v[0] / v[1] if isinstance(v, tuple) and v[1] else float(v if not isinstance(v, tuple) else 0)
        dx, dy = val(xres.value), val(yres.value)
        if dx > 0 and dy > 0:
            meta.dpi = (dx * 2.54, dy * 2.54) if unit == _CM else (dx, dy)
    orientation = tags.get(274)
    o = int(orientation.value) if orientation is not None else 1
    o = o if 1 <= o <= 8 else 1
    meta.dpi = oriented_dpi(meta.dpi, o)
    return meta, o


def encode_tiff(path: str, a: np.ndarray, alpha: np.ndarray | None, meta: Metadata,
                premultiplied: bool = False) -> None:
    """Write H x W x C samples (uint8/uint16/float32) plus optional alpha, deflate-compressed;
    ``premultiplied``: the alpha is associated (the colours are times alpha), as read."""
    import tifffile

    color = a.shape[2] == 3
    if alpha is not None:
        a = np.concatenate([a, alpha[..., None].astype(a.dtype)], axis=2)
    if a.shape[2] == 1:
        a = a[..., 0]
    kw = {}
    if meta.dpi:
        kw.update(resolution=(float(meta.dpi[0]), float(meta.dpi[1])), resolutionunit="INCH")
    if meta.icc:
        kw["iccprofile"] = meta.icc
    tifffile.imwrite(path, a, photometric="rgb" if color else "minisblack",
                     extrasamples=(("assocalpha" if premultiplied else "unassalpha",)
                                   if alpha is not None else None),
                     compression="zlib", predictor=a.dtype.kind != "f" or None,
                     metadata=None, **kw)
