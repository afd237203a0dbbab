"""The Pillow codec: every format Pillow reads, its metadata, and its many modes mapped
onto gray/RGB + alpha."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from n3cli.io.image import ORIENTATION_TAG, Image, Metadata, check_size, orient, oriented_dpi


def decode_pillow(data: bytes, name: str, max_pixels: int | None, scale: int = 1) -> Image:
    """Decode anything Pillow reads (8-bit PNG, JPEG, BMP, WebP, GIF, PNM, ...)."""
    img = PILImage.open(io.BytesIO(data))
    check_size(img.width, img.height, name, max_pixels, scale)
    img.load()
    notes = []
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        notes.append(f"only the first of {frames} frames is used")
    meta, orientation = pillow_metadata(img)
    source_mode = img.mode
    arr, alpha, depth, mode_notes, keep_icc = pillow_to_arrays(img)
    notes += mode_notes
    unit = depth != 32 or bool(arr.min() >= 0.0 and arr.max() <= 1.0)
    if not keep_icc:
        meta.icc = None
    pixels, alpha = orient(arr, orientation), orient(alpha, orientation)
    return Image(pixels=pixels, alpha=alpha, bit_depth=depth, format=(img.format or "unknown").lower(),
                 source_mode=source_mode, metadata=meta, notes=notes, unit_range=unit)


def pillow_metadata(img: PILImage.Image, header_only: bool = False) -> tuple[Metadata, int]:
    """ICC, DPI and EXIF (orientation reset to 1) of a Pillow image, and its orientation.

    ``header_only``: take EXIF only from what opening the file read (Pillow's PNG
    ``getexif`` would otherwise decode the pixels to look for an eXIf chunk after them).
    """
    meta = Metadata(icc=img.info.get("icc_profile") or None)
    dpi = img.info.get("dpi")
    if dpi and len(dpi) == 2 and all(float(d) > 0 for d in dpi):
        meta.dpi = (float(dpi[0]), float(dpi[1]))
    orientation = 1
    try:
        if header_only:
            exif = PILImage.Exif()
            if img.info.get("exif"):
                exif.load(img.info["exif"])
        else:
            exif = img.getexif()
    except Exception:  # unreadable EXIF is dropped, the pixels still count
        exif = None
    if exif:
        try:
            orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
        except (TypeError, ValueError):
            orientation = 1
        if meta.dpi is None:  # WebP (and a JPEG without JFIF density) keep DPI in EXIF only
            meta.dpi = exif_dpi(exif)
        if ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        try:
            meta.exif = exif.tobytes()
        except Exception:
            meta.exif = None
    orientation = orientation if 1 <= orientation <= 8 else 1
    meta.dpi = oriented_dpi(meta.dpi, orientation)
    return meta, orientation


def exif_dpi(exif: PILImage.Exif) -> tuple[float, float] | None:
    """(x, y) DPI from EXIF's X/YResolution and ResolutionUnit (inch or cm), if valid."""
    try:
        x, y = float(exif.get(0x011A, 0) or 0), float(exif.get(0x011B, 0) or 0)
        unit = int(exif.get(0x0128, 2) or 2)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (0 < x < 1e6 and 0 < y < 1e6) or unit not in (2, 3):  # NaN fails too
        return None
    return (x * 2.54, y * 2.54) if unit == 3 else (x, y)


def pillow_to_arrays(img: PILImage.Image) -> tuple[np.ndarray, np.ndarray | None, int, list[str], bool]:
    """(pixels H x W x C float32, alpha, bit depth, notes, ICC still valid) from any mode."""
    mode, notes, keep_icc = img.mode, [], True
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        a = np.asarray(img).astype(np.float32) / 65535.0
        return a[..., None], None, 16, notes, keep_icc
    if mode == "I":
        a = np.asarray(img)
        if a.min() < 0 or a.max() > 65535:
            raise ValueError("32-bit integer samples are not supported")
        return (a.astype(np.float32) / 65535.0)[..., None], None, 16, notes, keep_icc
    if mode == "F":
        return np.asarray(img, dtype=np.float32)[..., None], None, 32, notes, keep_icc
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("L", "RGB") and "transparency" in img.info:
        # A tRNS colour key is transparency: keep it as the alpha channel it stands for.
        img = img.convert("LA" if mode == "L" else "RGBA")
        notes.append("transparent colour key (tRNS) written as an alpha channel")
    elif mode == "1":
        img = img.convert("L")
    elif mode == "La":
        img = img.convert("LA")
    elif mode in ("RGBa", "RGBX"):
        img = img.convert("RGBA" if mode == "RGBa" else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        keep_icc = mode == "YCbCr"  # a CMYK/Lab profile no longer describes RGB pixels
        img = img.convert("RGB")
        notes.append(f"{mode} converted to RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in mode else "RGB")
        notes.append(f"{mode} converted to {img.mode}")
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[..., None]
    alpha = None
    if img.mode in ("LA", "RGBA"):
        alpha = a[..., -1].astype(np.float32) / 255.0
        a = a[..., :-1]
    if mode in ("P", "PA"):
        if a.shape[2] == 3 and _is_gray(a):
            a = a[..., :1]  # a gray palette stays gray
        notes.append(f"palette image written as {'L' if a.shape[2] == 1 else 'RGB'}"
                     f"{'A' if alpha is not None else ''}")
    return a.astype(np.float32) / 255.0, alpha, 8, notes, keep_icc


def _is_gray(a: np.ndarray) -> bool:
    return bool(np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]))
