"""Camera raw files through rawpy (LibRaw): the Bayer mosaic as four normalised CFA planes.

:func:`read_raw` returns a :class:`RawMosaic`: the visible area's 2x2 CFA positions
(0,0), (0,1), (1,0), (1,1) as four half-resolution float32 planes, each normalised as
``(raw - black_c) / (white - black_c)`` and not clipped (noise below black and values
above white are kept; the caller decides). :func:`mosaic_from_planes` inverts that to
raw units, ready for :func:`n3cli.io.dng.write_dng`.

Odd sizes: the planes cover the even part of the visible area; an odd last row and/or
column has no complete 2x2 cell, so it is not in the planes and
:func:`mosaic_from_planes` copies it unchanged from the original (:attr:`RawMosaic.visible`).

Only 2x2 RGB Bayer sensors qualify. Refused with one clear line
(:class:`~n3cli.errors.ImageReadError`): X-Trans (6x6 pattern), monochrome and other
non-Bayer sensors (Foveon, CMYG, ...), demosaiced (linear) DNGs, ordinary TIFFs (LibRaw
happily opens a 16-bit gray TIFF as if it were a Bayer raw), files LibRaw cannot decode.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

import numpy as np

from n3cli.errors import ImageReadError
from n3cli.io.formats import IMAGE_EXTENSIONS, RAW_EXTENSIONS
from n3cli.io.image import read_input_bytes

# LibRaw's ``sizes.flip`` -> EXIF Orientation (inverse of dcraw's "50132467"[orientation]).
_FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_DNG_VERSION, _NOISE_PROFILE = 50706, 51041
# LibRaw's linear sRGB -> XYZ (D65): its camera -> sRGB matrices are relative to this.
XYZ_FROM_SRGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])


@dataclass(frozen=True)
class RawMetadata:
    """What a DNG written from this raw should carry. Unknown values are None.

    ``color_matrix``: XYZ -> camera (3x3, rows R, G, B) under ``illuminant`` (EXIF
    LightSource code; 21 = D65, the illuminant of LibRaw's built-in matrices);
    ``color_matrix_source``: "dng" (the input's own tag), "libraw" (LibRaw's table for the
    camera), "embedded" (a camera -> sRGB matrix LibRaw reads from the file but rawpy does
    not expose, measured: see :func:`_embedded_matrix`), or "" (none);
    ``as_shot_neutral``: camera-space neutral (1 / white-balance multipliers, green = 1);
    ``noise_profile``: DNG NoiseProfile (a, b) pairs, variance = a * x + b for x in [0, 1].
    """

    make: str = ""
    model: str = ""
    unique_camera_model: str = ""
    orientation: int = 1
    color_matrix: tuple[tuple[float, float, float], ...] | None = None
    illuminant: int = 21
    color_matrix_source: str = ""
    as_shot_neutral: tuple[float, float, float] | None = None
    iso: float | None = None
    exposure_time: float | None = None
    f_number: float | None = None
    focal_length: float | None = None
    datetime: str | None = None  # EXIF form "YYYY:MM:DD HH:MM:SS"
    lens_make: str | None = None
    lens_model: str | None = None
    noise_profile: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True, eq=False)
class RawMosaic:
    """A Bayer raw's visible area. ``planes``: float32 (4, H // 2, W // 2) in position order
    (0,0), (0,1), (1,0), (1,1); ``cfa``: their colours, e.g. "GRBG"; ``black``: black level
    per position; ``white``: white level; ``visible``: the original uint16 H x W mosaic;
    ``margins``: (top, left) of the visible area inside the full sensor readout."""

    planes: np.ndarray
    cfa: str
    black: tuple[float, float, float, float]
    white: float
    visible: np.ndarray
    margins: tuple[int, int] = (0, 0)
    metadata: RawMetadata = RawMetadata()
    source: str = ""

    @property
    def height(self) -> int:
        return self.visible.shape[0]

    @property
    def width(self) -> int:
        return self.visible.shape[1]


@contextmanager
def _quiet_decoders() -> Iterator[None]:
    """Silence what LibRaw (C, straight to file descriptor 2) and tifffile (its logger) say
    about a broken file: n3 reports it in its own one line."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    saved = None
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, captured): leave it
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        logger.setLevel(level)


def is_camera_raw(path_or_bytes: Path | str | bytes) -> bool:
    """True when LibRaw can open the content as a camera raw (any extension, or none).

    Demosaiced DNGs and X-Trans files count (they are camera raws that :func:`read_raw`
    refuses); ordinary TIFFs do not, even though LibRaw opens some of them.
    """
    try:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        import rawpy

        with _quiet_decoders(), rawpy.imread(io.BytesIO(data)) as rp:
            rp.raw_type  # noqa: B018 - forces LibRaw to identify the file
        return not _ordinary_tiff(_tiff_tags(data))
    except Exception:  # noqa: BLE001 - unreadable, undecodable: either way not a raw
        return False


def looks_like_raw(path: Path) -> bool:
    """A camera raw: by extension where it is a raw's or an image's (so an ordinary image
    is read once, by the image reader), by content (LibRaw opens it) otherwise."""
    ext = Path(path).suffix.lower()
    if ext in RAW_EXTENSIONS:
        return True
    if ext in IMAGE_EXTENSIONS or not Path(path).is_file():
        return False  # (a FIFO would block the read; the image reader reports why)
    return is_camera_raw(path)


def read_raw(path: Path | str) -> RawMosaic:
    """Read a 2x2 Bayer camera raw; :class:`ImageReadError` with one line on any refusal."""
    path = Path(path)
    data = read_input_bytes(path, "a raw file")
    import rawpy

    try:
        with _quiet_decoders():
            rp = rawpy.imread(io.BytesIO(data))
    except (rawpy.LibRawError, ValueError, OSError) as err:
        raise ImageReadError(f"{path}: not a camera raw LibRaw can decode ({_libraw_reason(err)})") from None
    with rp:
        tags = _tiff_tags(data)
        if _ordinary_tiff(tags):
            raise ImageReadError(f"{path}: an ordinary TIFF image, not a camera raw: denoise it as an image")
        try:
            with _quiet_decoders():  # LibRaw reports a short file itself while unpacking
                return _mosaic(rp, tags, str(path))
        except ImageReadError:
            raise
        except rawpy.LibRawIOError:
            raise ImageReadError(f"{path}: truncated or corrupt raw file (the image data ends early)") from None
        except rawpy.LibRawError as err:
            raise ImageReadError(f"{path}: corrupt or unsupported raw data ({_libraw_reason(err)})") from None


def mosaic_from_planes(planes: np.ndarray, raw: RawMosaic) -> np.ndarray:
    """Planes (4, H // 2, W // 2) in normalised units -> uint16 H x W mosaic in raw units.

    Inverse of the normalisation, rounded, clipped to [0, white] (or to the original's
    maximum where the sensor recorded values above its nominal white level, so that an
    untouched mosaic round-trips exactly); an odd last row/column is copied from
    ``raw.visible``.
    """
    planes = np.asarray(planes)
    h, w = raw.height // 2, raw.width // 2
    if planes.shape != (4, h, w):
        raise ValueError(f"planes must have shape {(4, h, w)}, got {planes.shape}")
    ceiling = max(float(raw.white), float(raw.visible.max(initial=0)))
    out = raw.visible.copy()
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        b = float(raw.black[k])
        values = planes[k].astype(np.float64) * (raw.white - b) + b
        out[dy:2 * h:2, dx:2 * w:2] = np.clip(np.rint(values), 0, ceiling).astype(np.uint16)
    return out


def _libraw_reason(err: Exception) -> str:
    text = str(err.args[0] if err.args else err)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    return " ".join(text.split()).rstrip(".").lower() or type(err).__name__


def _mosaic(rp, tags: dict, name: str) -> RawMosaic:
    import rawpy

    if rp.raw_type != rawpy.RawType.Flat:
        raise ImageReadError(f"{name}: already demosaiced (linear DNG or similar), no Bayer mosaic to "
                             "denoise: use the camera's original raw file")
    pattern = rp.raw_pattern
    if pattern is None or pattern.shape == (1, 1) or rp.num_colors == 1:
        raise ImageReadError(f"{name}: monochrome sensor (no colour filter array): not supported, "
                             "only 2x2 Bayer raws can be denoised")
    if pattern.shape == (6, 6):
        raise ImageReadError(f"{name}: Fujifilm X-Trans sensor (6x6 colour pattern): not supported, "
                             "only 2x2 Bayer raws can be denoised")
    desc = rp.color_desc.decode("ascii", "replace")
    if desc[:3] != "RGB":
        raise ImageReadError(f"{name}: not an RGB Bayer sensor (colours {desc}): only 2x2 Bayer raws "
                             "can be denoised")
    if pattern.shape != (2, 2):
        raise ImageReadError(f"{name}: {pattern.shape[0]}x{pattern.shape[1]} colour pattern, not a 2x2 "
                             "Bayer one: only 2x2 Bayer raws can be denoised")
    visible = np.array(rp.raw_image_visible, dtype=np.uint16, copy=True)
    H, W = visible.shape
    if H < 2 or W < 2:
        raise ImageReadError(f"{name}: raw image too small ({W}x{H})")
    colours = np.array(rp.raw_colors_visible[:2, :2], dtype=np.intp)
    index = [int(colours[dy, dx]) for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
    cfa = "".join(desc[i] for i in index)
    if cfa not in ("RGGB", "BGGR", "GRBG", "GBRG"):
        raise ImageReadError(f"{name}: unusual colour filter layout {cfa}: only RGGB, BGGR, GRBG and "
                             "GBRG Bayer raws can be denoised")
    # black_level_per_channel is indexed by LibRaw colour (R, G, B, G2) and is LibRaw's
    # black + cblack[c], a DNG's 2x2 BlackLevel pattern folded in (rawpy has no other
    # black level; user_black / user_cblack are postprocess overrides, not file data).
    per_colour = [float(v) for v in rp.black_level_per_channel]
    black = tuple(per_colour[i] for i in index)
    white = float(rp.white_level)
    if any(white <= b for b in black):
        raise ImageReadError(f"{name}: white level {white:g} not above black level {max(black):g}: "
                             "corrupt raw metadata")
    h, w = H // 2, W // 2
    planes = np.empty((4, h, w), dtype=np.float32)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        cell = visible[dy:2 * h:2, dx:2 * w:2].astype(np.float32)
        planes[k] = (cell - np.float32(black[k])) / np.float32(white - black[k])
    sizes = rp.sizes
    return RawMosaic(planes=planes, cfa=cfa, black=black, white=white, visible=visible,
                     margins=(int(sizes.top_margin), int(sizes.left_margin)),
                     metadata=_metadata(rp, tags), source=name)


def _metadata(rp, tags: dict) -> RawMetadata:
    other, lens = rp.other, rp.lens
    matrix = np.asarray(rp.rgb_xyz_matrix, dtype=np.float64)[:3]
    color_matrix, illuminant, source = None, 21, ""
    if tags.get("color_matrix"):  # a DNG: carry its own matrix and illuminant exactly
        (color_matrix, illuminant), source = tags["color_matrix"], "dng"
    elif np.any(matrix):
        color_matrix, source = _rows(matrix), "libraw"
    elif not tags.get("dng"):
        color_matrix = _embedded_matrix(rp)
        source = "embedded" if color_matrix is not None else ""
    make = tags.get("make", "")
    model = tags.get("model", "")
    return RawMetadata(
        make=make, model=model,
        unique_camera_model=tags.get("unique_camera_model") or f"{make} {model}".strip(),
        orientation=_FLIP_TO_EXIF.get(int(rp.sizes.flip), 1),
        color_matrix=color_matrix, illuminant=illuminant, color_matrix_source=source,
        as_shot_neutral=_neutral(rp.camera_whitebalance),
        iso=_positive(other.iso_speed), exposure_time=_positive(other.shutter_speed),
        f_number=_positive(other.aperture), focal_length=_positive(other.focal_length),
        datetime=tags.get("datetime") or _timestamp(other.timestamp),
        lens_make=(lens.make or tags.get("lens_make")) or None,
        lens_model=(lens.model or tags.get("lens_model")) or None,
        noise_profile=tags.get("noise_profile"),
    )


def _embedded_matrix(rp) -> tuple | None:
    """The XYZ -> camera matrix equivalent to the camera -> sRGB matrix LibRaw applies.

    Some raws (old Kodaks, ...) carry a camera -> sRGB matrix that LibRaw uses but rawpy
    does not expose (``rgb_xyz_matrix`` is zero). Developing the file twice at half size
    with a linear curve, once to camera colours and once to sRGB, measures it exactly (a
    least-squares fit over unclipped pixels). With camera white balance, as LibRaw only
    uses such a matrix then (its ``use_camera_matrix`` default) and as renders here do.
    None when LibRaw uses none (the fit is the identity) or too few pixels are usable.
    """
    import rawpy

    common = {"half_size": True, "gamma": (1, 1), "no_auto_bright": True, "use_camera_wb": True,
              "output_bps": 16, "adjust_maximum_thr": 0.0, "user_flip": 0}
    try:
        cam = rp.postprocess(output_color=rawpy.ColorSpace.raw, **common).reshape(-1, 3).astype(np.float64)
        rgb = rp.postprocess(output_color=rawpy.ColorSpace.sRGB, **common).reshape(-1, 3).astype(np.float64)
    except rawpy.LibRawError:
        return None
    ok = (cam.min(1) > 64) & (cam.max(1) < 60000) & (rgb.min(1) > 0) & (rgb.max(1) < 65000)
    if ok.sum() < 64:
        return None
    fit, *_ = np.linalg.lstsq(cam[ok], rgb[ok], rcond=None)
    rgb_cam = np.round(fit.T, 4)
    if np.abs(rgb_cam - np.eye(3)).max() < 2e-3 or abs(np.linalg.det(rgb_cam)) < 1e-6:
        return None
    return _rows(np.linalg.inv(XYZ_FROM_SRGB @ rgb_cam))


def _rows(m: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(m, dtype=np.float64).reshape(3, 3))


def _neutral(wb) -> tuple[float, float, float] | None:
    """Camera multipliers (R, G, B, G2) -> AsShotNeutral (G/R, 1, G/B); None if unknown."""
    r, g, b = (float(v) for v in list(wb)[:3])
    if not (r > 0 and g > 0 and b > 0):
        return None
    return (g / r, 1.0, g / b)


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    # LibRaw stores these as float32: 7 significant digits give back 1/230 s, f/6.2, ...
    return float(f"{v:.7g}") if v > 0 and np.isfinite(v) else None


def _timestamp(ts) -> str | None:
    if isinstance(ts, datetime) and ts.year > 1970:
        return ts.strftime("%Y:%m:%d %H:%M:%S")
    return None


def _ordinary_tiff(tags: dict) -> bool:
    """A TIFF (``tags`` from :func:`_tiff_tags`) without DNGVersion and without a camera
    Make: a plain image, not a raw.

    Every TIFF-based raw (NEF, CR2, ARW, KDC, ...) names its camera maker; LibRaw also
    "decodes" plain 16-bit gray TIFFs as Bayer data, which must not pass for a raw.
    """
    return bool(tags.get("parsed")) and not tags.get("dng") and not tags.get("make")


def _tiff_tags(data: bytes) -> dict:
    """Tags tifffile can read from a TIFF-based raw (empty for other containers)."""
    if data[:4] not in _TIFF_MAGIC:
        return {}
    try:
        import tifffile

        with _quiet_decoders(), tifffile.TiffFile(io.BytesIO(data)) as tf:
            return _collect(tf)
    except Exception:  # noqa: BLE001 - a raw tifffile cannot parse: rawpy's view is all there is
        return {}


def _collect(tf) -> dict:
    first = tf.pages.first
    pages = [first, *(first.pages or [])] if first is not None else []
    out: dict = {"parsed": True, "dng": any(_DNG_VERSION in p.tags for p in pages)}
    for key, code in (("make", 271), ("model", 272), ("unique_camera_model", 50708)):
        value = _text(first.tags.get(code))
        if value:
            out[key] = value
    exif = first.tags.get(34665)
    exif = exif.value if exif is not None and isinstance(exif.value, dict) else {}
    date = (_text(first.tags.get(36867)) or _text_value(exif.get("DateTimeOriginal"))
            or _text(first.tags.get(306)))
    if date:
        out["datetime"] = date
    for key, name, code in (("lens_make", "LensMake", 42035), ("lens_model", "LensModel", 42036)):
        value = _text(first.tags.get(code)) or _text_value(exif.get(name))
        if value:
            out[key] = value
    if out["dng"]:
        # The raw IFD (NewSubFileType 0) first, then IFD0: either may hold NoiseProfile.
        ordered = sorted(pages, key=lambda p: int(getattr(p, "subfiletype", 1) or 0) != 0)
        for page in ordered:
            tag = page.tags.get(_NOISE_PROFILE)
            if tag is not None:
                v = [float(x) for x in np.ravel(tag.value)]
                if v and len(v) % 2 == 0:
                    out["noise_profile"] = tuple((v[i], v[i + 1]) for i in range(0, len(v), 2))
                break
        out["color_matrix"] = _dng_matrix(first)
    return out


def _dng_matrix(page) -> tuple | None:
    """ColorMatrix under D65 if the DNG has one, else ColorMatrix1, with its illuminant."""
    found = []
    for matrix_code, illum_code in ((50721, 50778), (50722, 50779)):
        m = page.tags.get(matrix_code)
        if m is None:
            continue
        values = np.array(_reals(m.value), dtype=np.float64)
        if values.size != 9 or not np.any(values):
            continue
        illum = page.tags.get(illum_code)
        found.append((_rows(values), int(illum.value) if illum is not None else 21))
    for matrix, illum in found:
        if illum == 21:
            return matrix, illum
    return found[0] if found else None


def _reals(value) -> list[float]:
    flat = list(np.ravel(value))
    ints = all(isinstance(v, (int, np.integer)) for v in flat)
    if flat and isinstance(value, tuple) and len(flat) % 2 == 0 and ints:  # tifffile's rationals
        return [flat[i] / flat[i + 1] if flat[i + 1] else 0.0 for i in range(0, len(flat), 2)]
    return [float(v) for v in flat]


def _text(tag) -> str:
    return _text_value(tag.value) if tag is not None else ""


def _text_value(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip("\x00 ").strip() if isinstance(value, str) else ""
