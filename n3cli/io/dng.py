"""Writing a Bayer mosaic as a CFA DNG (tifffile), and rendering raws to 16-bit sRGB (rawpy).

Writer: tifffile, not pidng. tifffile (maintained, already a dependency) writes
PhotometricInterpretation CFA with any DNG tag through ``extratags``; pidng adds an
unmaintained (since 2022) dependency for nothing tifffile cannot do. The layout is the
plainest a DNG reader accepts: one IFD0 holding the raw image (NewSubFileType 0),
uncompressed 16-bit strips (no tiles: some editors reject tiled layouts), no preview.

Colour: the source's XYZ -> camera matrix as ColorMatrix1 (see
:attr:`RawMetadata.color_matrix <n3cli.io.raw.RawMetadata>`: LibRaw's table or the DNG's
own, illuminant D65 = 21 for LibRaw's table; for files such as the Kodak DC50 that embed
a camera -> sRGB matrix, its XYZ equivalent). Without any, ColorMatrix1 is the
XYZ(D65) -> linear sRGB matrix, D65: it declares "camera RGB is linear sRGB", which is
what LibRaw does for a camera it has no matrix for (identity camera -> sRGB).

EXIF (DateTimeOriginal, ISO, ExposureTime, FNumber, FocalLength, LensMake/LensModel) goes
into an EXIF IFD, where readers look for it (LibRaw ignores ISO in IFD0). tifffile writes
no EXIF IFD, so it is appended after tifffile is done (:func:`_append_exif_ifd`).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from n3cli.io.atomic import atomic_write
from n3cli.io.raw import XYZ_FROM_SRGB, RawMosaic

_COLOUR_CODE = {"R": 0, "G": 1, "B": 2}  # CFAPattern values
# XYZ (D65) -> linear sRGB (IEC 61966-2-1): the inverse of LibRaw's sRGB -> XYZ matrix, so
# that LibRaw's camera -> sRGB becomes the identity.
SRGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_SRGB)
D65 = 21
_EXIF_IFD, _EXIF_PLACEHOLDER = 34665, 34664
_ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED = 2, 3, 4, 5, 7
_EXIF_DATE = re.compile(r"\d{4}:\d\d:\d\d \d\d:\d\d:\d\d")
# Developing parameters shared by every render, so an original and its DNG compare:
# as-shot white balance, no auto-brightening, no data-dependent white level
# (adjust_maximum_thr=0: a denoised mosaic has another maximum), sRGB tone curve.
RENDER_PARAMS = {"output_bps": 16, "use_camera_wb": True, "no_auto_bright": True, "adjust_maximum_thr": 0.0,
                 "gamma": (2.4, 12.92), "highlight_mode": 0}


def write_dng(path: Path | str, mosaic: np.ndarray, raw: RawMosaic, *,
              noise_profile: Sequence[tuple[float, float]] | None = None,
              noise_reduction_applied: float | None = None, exif: bool = True) -> Path:
    """Write ``mosaic`` (uint16 H x W, raw units, same size and CFA as ``raw``) as a DNG.

    ``noise_profile``: DNG NoiseProfile (a, b) pairs in normalised units, one pair for all
    planes, three (R, G, B), or four per CFA position (the two greens are averaged: DNG
    wants one pair per colour plane). The source's own profile is not carried: it stops
    being true once the mosaic is denoised. ``noise_reduction_applied``: 0 (none) .. 1 (full).
    ``exif`` False leaves out the source's EXIF (date, exposure, ISO, lens); the camera's
    make and model stay (raw developers pick their colour profile by them). Written
    atomically; returns ``path``.
    """
    mosaic = np.asarray(mosaic)
    if mosaic.dtype != np.uint16 or mosaic.shape != raw.visible.shape:
        raise ValueError(f"mosaic must be uint16 {raw.visible.shape}, got {mosaic.dtype} {mosaic.shape}")
    tags = dng_tags(raw, noise_profile=noise_profile, noise_reduction_applied=noise_reduction_applied,
                    exif=exif)
    entries = _exif_entries(raw.metadata) if exif else []
    # tifffile checks the DateTime format itself; a malformed source date is just left out.
    date = raw.metadata.datetime if exif and _EXIF_DATE.fullmatch(raw.metadata.datetime or "") else None

    def write(tmp: str) -> None:
        import tifffile

        from n3cli import __version__

        tifffile.imwrite(tmp, mosaic, photometric="cfa", subfiletype=0, compression=None,
                         rowsperstrip=_rows_per_strip(mosaic.shape[1]), metadata=None,
                         software=f"n3cli {__version__}", datetime=date, extratags=tags)
        if entries:
            _append_exif_ifd(tmp, entries)

    return atomic_write(path, write)


def dng_tags(raw: RawMosaic, *, noise_profile=None, noise_reduction_applied=None, exif: bool = True) -> list[tuple]:
    """The ``extratags`` (tifffile form) of :func:`write_dng`."""
    meta = raw.metadata
    make = _ascii(meta.make) or "Unknown"
    model = _ascii(meta.model) or "Unknown"
    tags: list[tuple] = [
        (271, "s", 0, make, True),
        (272, "s", 0, model, True),
        (274, "H", 1, meta.orientation if 1 <= meta.orientation <= 8 else 1, True),
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, bytes(_COLOUR_CODE[c] for c in raw.cfa), True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, _ascii(meta.unique_camera_model) or f"{make} {model}", True),
        (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor: R, G, B
        (50711, "H", 1, 1, True),  # CFALayout: rectangular
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        _black_tag(raw.black),
        (50717, "I", 1, round(raw.white), True),  # WhiteLevel
        (50719, "I", 2, (0, 0), True),  # DefaultCropOrigin
        (50720, "I", 2, (raw.width, raw.height), True),  # DefaultCropSize
        (50721, "2i", 9, _rationals(_color_matrix(raw), 10000), True),  # ColorMatrix1
        (50728, "2I", 3, _rationals(meta.as_shot_neutral or (1.0, 1.0, 1.0), 1000000), True),
        (50778, "H", 1, meta.illuminant if meta.color_matrix is not None else D65, True),
    ]
    if exif and _exif_entries(meta):
        tags.append((_EXIF_PLACEHOLDER, "I", 1, 0, True))  # becomes ExifIFD: _append_exif_ifd
    if noise_reduction_applied is not None:
        if not 0 <= float(noise_reduction_applied) <= 1:
            raise ValueError(f"noise_reduction_applied must be in [0, 1], got {noise_reduction_applied}")
        tags.append((50935, "2I", 1, _rationals([float(noise_reduction_applied)], 10000), True))
    if noise_profile is not None:
        values = [float(v) for pair in _per_plane(noise_profile, raw.cfa) for v in pair]
        tags.append((51041, "d", len(values), values, True))
    return tags


def render_srgb16(path_or_bytes: Path | str | bytes) -> np.ndarray:
    """Develop a raw (original or DNG) with LibRaw: H x W x 3 uint16 sRGB (:data:`RENDER_PARAMS`)."""
    import rawpy

    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    with rawpy.imread(source) as rp:
        return rp.postprocess(**RENDER_PARAMS)


def _ascii(text: str | None) -> str:
    """TIFF ASCII fields hold 7-bit text only."""
    return (text or "").encode("ascii", "replace").decode("ascii").strip()


def _rows_per_strip(width: int) -> int:
    # About 64 KiB strips: small enough for any reader, few enough to keep the IFD short.
    return max(1, (1 << 16) // (2 * width))


def _color_matrix(raw: RawMosaic) -> list[float]:
    m = raw.metadata.color_matrix
    return [float(v) for v in np.ravel(m if m is not None else SRGB_FROM_XYZ)]


def _black_tag(black: Sequence[float]) -> tuple:
    if all(float(b).is_integer() for b in black):
        return (50714, "I", 4, tuple(int(b) for b in black), True)
    return (50714, "2I", 4, _rationals(black, 10000), True)


def _rationals(values: Sequence[float], denominator: int) -> tuple[int, ...]:
    """Flat (numerator, denominator, ...) with the smallest exact-enough denominators."""
    out: list[int] = []
    for v in values:
        f = Fraction(float(v)).limit_denominator(denominator)
        out += [f.numerator, f.denominator]
    return tuple(out)


def _exif_entries(meta) -> list[tuple[int, int, int, bytes]]:
    """(code, TIFF type, count, little-endian value bytes) of the EXIF IFD, sorted by code."""
    entries: list[tuple[int, int, int, bytes]] = []

    def rational(code: int, value: float, denominator: int) -> None:
        entries.append((code, _RATIONAL, 1, struct.pack("<2I", *_rationals([value], denominator))))

    def ascii_(code: int, text: str) -> None:
        data = _ascii(text).encode("ascii") + b"\0"
        entries.append((code, _ASCII, len(data), data))

    if meta.exposure_time:
        rational(33434, meta.exposure_time, 1000000)
    if meta.f_number:
        rational(33437, meta.f_number, 1000)
    if meta.iso:
        entries.append((34855, _SHORT, 1, struct.pack("<H", min(round(meta.iso), 65535))))
    entries.append((36864, _UNDEFINED, 4, b"0230"))  # ExifVersion 2.3
    if meta.datetime and _EXIF_DATE.fullmatch(meta.datetime):
        ascii_(36867, meta.datetime)
    if meta.focal_length:
        rational(37386, meta.focal_length, 1000)
    if meta.lens_make:
        ascii_(42035, meta.lens_make)
    if meta.lens_model:
        ascii_(42036, meta.lens_model)
    return entries if len(entries) > 1 else []  # ExifVersion alone: no EXIF IFD


def _append_exif_ifd(path: str, entries: list[tuple[int, int, int, bytes]]) -> None:
    """Append an EXIF IFD to the file, and turn IFD0's placeholder entry into its pointer.

    tifffile refuses to write the ExifIFD tag (34665), so IFD0 gets an unregistered LONG
    tag right below it (34664: same slot in the sorted IFD) that is renamed here.
    """
    with open(path, "r+b") as f:
        head = f.read(8)
        if head[:4] != b"II*\0":  # tifffile writes little-endian classic TIFF
            raise OSError("unexpected TIFF header written")
        ifd0 = struct.unpack("<I", head[4:])[0]
        f.seek(ifd0)
        (n,) = struct.unpack("<H", f.read(2))
        codes = [struct.unpack("<H", f.read(12)[:2])[0] for _ in range(n)]
        slot = ifd0 + 2 + 12 * codes.index(_EXIF_PLACEHOLDER)
        start = f.seek(0, 2)
        start += start % 2  # IFDs begin on a word boundary
        data_at = start + 2 + 12 * len(entries) + 4
        table, data = [struct.pack("<H", len(entries))], b""
        for code, kind, count, value in entries:
            if len(value) <= 4:
                table.append(struct.pack("<HHI", code, kind, count) + value.ljust(4, b"\0"))
            else:
                table.append(struct.pack("<HHII", code, kind, count, data_at + len(data)))
                data += value + b"\0" * (len(value) % 2)
        table.append(struct.pack("<I", 0))  # no next IFD
        f.seek(start)
        f.write(b"".join(table) + data)
        f.seek(slot)
        f.write(struct.pack("<HHII", _EXIF_IFD, _LONG, 1, start))


def _per_plane(profile, cfa: str) -> list[tuple[float, float]]:
    pairs = [(float(a), float(b)) for a, b in profile]
    if len(pairs) == 4:  # per CFA position -> per colour (R, G, B)
        by_colour = {c: [p for p, pc in zip(pairs, cfa) if pc == c] for c in "RGB"}
        pairs = [tuple(np.mean(by_colour[c], axis=0)) for c in "RGB"]
    if len(pairs) not in (1, 3) or not all(np.isfinite(v) for p in pairs for v in p):
        raise ValueError(f"noise_profile needs 1, 3 or 4 finite (a, b) pairs, got {len(pairs)}")
    return pairs
