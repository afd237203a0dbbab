"""Reading images faithfully: bit depth, channels, alpha, orientation and metadata.

A loaded image is an :class:`Image`: colour planes as float32 H x W x C in [0, 1]
(C = 1 gray or 3 RGB), alpha apart (it passes through denoising untouched), the source
bit depth (8, 16, or 32 for float) and the metadata worth carrying to the output.

Decoders: 16-bit PNG through OpenCV (Pillow reduces 16-bit colour PNGs to 8 bits),
TIFF through tifffile (16-bit and float samples), everything else through Pillow.
Every failure becomes :class:`ImageReadError` (or :class:`UsageError` for camera raw
files) naming the file: nothing else escapes :func:`read_image`.
"""

from __future__ import annotations

import io
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageFile

from n3cli.errors import ImageReadError, N3Error, UsageError
from n3cli.io.formats import RAW_EXTENSIONS, sniff
from n3cli.io.png_chunks import read_ihdr

DEFAULT_MAX_PIXELS = 100_000_000
ORIENTATION_TAG = 0x0112
RAW_MESSAGE = "camera raw files need --raw (not supported yet)"


@dataclass
class Metadata:
    """What is carried from input to output (``--strip-metadata`` drops all of it).

    ``exif`` is stored with its orientation already reset to 1 (pixels are upright).
    """

    exif: bytes | None = None
    icc: bytes | None = None
    dpi: tuple[float, float] | None = None

    def empty(self) -> bool:
        return not (self.exif or self.icc or self.dpi)


@dataclass
class Image:
    """A decoded image. ``pixels``: float32 H x W x C (C = 1 or 3), [0, 1] for integer
    sources (float TIFFs keep their values); ``alpha``: float32 H x W or None."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8  # 8, 16, or 32 (float samples)
    format: str = "png"  # decoder's name for the container: png, tiff, jpeg, bmp, ...
    source_mode: str = ""  # what the file held, e.g. "RGB;16", "P", "CMYK"
    metadata: Metadata = field(default_factory=Metadata)
    notes: list[str] = field(default_factory=list)
    unit_range: bool = True  # float sources: all samples were in [0, 1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def channels(self) -> int:
        return self.pixels.shape[2]

    @property
    def color(self) -> bool:
        return self.channels == 3

    @property
    def mode(self) -> str:
        """Pillow-style name of the colour layout: L, LA, RGB or RGBA."""
        return ("RGB" if self.color else "L") + ("A" if self.alpha is not None else "")

    def describe(self) -> str:
        depth = "float" if self.bit_depth == 32 else f"{self.bit_depth}-bit"
        return f"{self.width}x{self.height} {depth} {self.mode} {self.format.upper()}"


def read_image(path: Path | str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Decode ``path``; raise :class:`ImageReadError` with a one-line reason on failure."""
    path = Path(path)
    if path.suffix.lower() in RAW_EXTENSIONS:
        raise UsageError(f"{path}: {RAW_MESSAGE}")
    data = _read_bytes(path)
    return decode_image(data, name=str(path), max_pixels=max_pixels)


def _read_bytes(path: Path) -> bytes:
    try:
        # A FIFO or a device (/dev/zero, /dev/stdin) would block or never end.
        if path.exists() and not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
            raise ImageReadError(f"{path}: not a regular file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a directory, not an image file") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except OSError as err:
        raise ImageReadError(f"{path}: cannot read: {err.strerror or err}") from None
    if not data:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    return data


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Decode image bytes; any decoder failure becomes :class:`ImageReadError`."""
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Decoder chatter (bomb warnings, odd EXIF) is not the user's business.
            warnings.simplefilter("ignore")
            return _decode(data, name, max_pixels)
    except N3Error:
        raise
    except Exception as err:  # decoders raise anything: map it to one clear line
        raise ImageReadError(f"{name}: {_reason(err, data, name)}") from err


def _reason(err: Exception, data: bytes, name: str) -> str:
    if isinstance(err, PILImage.UnidentifiedImageError):
        kind = "text" if _looks_like_text(data) else "unrecognised"
        return f"not an image ({kind} contents{_ext_hint(name)})"
    text = " ".join(str(err).split()) or type(err).__name__
    if len(text) > 100:
        text = text[:97] + "..."
    if "truncated" in text.lower() or isinstance(err, (EOFError, SyntaxError)):
        return f"truncated or corrupt image ({text})"
    if isinstance(err, MemoryError):
        return "not enough memory to decode this image"
    return f"corrupt or unsupported image ({text})"


def _ext_hint(name: str) -> str:
    suffix = Path(name).suffix
    return f" in a {suffix} file" if suffix else ""


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    return bool(head) and all(32 <= b < 127 or b in (9, 10, 13) for b in head)


def _check_size(width: int, height: int, name: str, max_pixels: int | None) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{name}: invalid image size {width}x{height}")
    if max_pixels and width * height > max_pixels:
        raise ImageReadError(
            f"{name}: {width}x{height} is {width * height / 1e6:.1f} MP, above the limit of "
            f"{max_pixels / 1e6:g} MP (raise it with --max-pixels)")


def _decode(data: bytes, name: str, max_pixels: int | None) -> Image:
    # Pillow's own bomb check must agree with ours (it errors at 2x its limit).
    PILImage.MAX_IMAGE_PIXELS = max_pixels if max_pixels else None
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # truncated files are errors, not gray bands
    kind = sniff(data)
    if kind == "png":
        width, height, depth, ctype = read_ihdr(data)
        _check_size(width, height, name, max_pixels)
        if depth == 16:
            from n3cli.io.decode16 import decode_png16
            return decode_png16(data, ctype, name)
    elif kind == "tiff":
        from n3cli.io.tiff import decode_tiff
        image = decode_tiff(data, name, max_pixels)
        if image is not None:
            return image
    return _decode_pillow(data, name, max_pixels)


def _decode_pillow(data: bytes, name: str, max_pixels: int | None) -> Image:
    try:
        img = PILImage.open(io.BytesIO(data))
    except PILImage.UnidentifiedImageError:
        if _is_camera_raw(data):
            raise UsageError(f"{name}: {RAW_MESSAGE}") from None
        raise
    _check_size(img.width, img.height, name, max_pixels)
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


def _is_camera_raw(data: bytes) -> bool:
    try:
        import rawpy

        with rawpy.imread(io.BytesIO(data)):
            return True
    except Exception:
        return False


def pillow_metadata(img: PILImage.Image) -> tuple[Metadata, int]:
    """ICC, DPI and EXIF (orientation reset to 1) of a Pillow image, and its orientation."""
    meta = Metadata(icc=img.info.get("icc_profile") or None)
    dpi = img.info.get("dpi")
    if dpi and len(dpi) == 2 and all(float(d) > 0 for d in dpi):
        meta.dpi = (float(dpi[0]), float(dpi[1]))
    orientation = 1
    try:
        exif = img.getexif()
    except Exception:  # unreadable EXIF is dropped, the pixels still count
        exif = None
    if exif:
        try:
            orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
        except (TypeError, ValueError):
            orientation = 1
        if ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        try:
            meta.exif = exif.tobytes()
        except Exception:
            meta.exif = None
    return meta, orientation if 1 <= orientation <= 8 else 1


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


def orient(a: np.ndarray | None, orientation: int) -> np.ndarray | None:
    """Apply an EXIF orientation (1..8) to an H x W [x C] array, like Pillow's exif_transpose."""
    if a is None or orientation == 1:
        return a
    ops = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: np.swapaxes(x, 0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: np.swapaxes(x, 0, 1)[::-1, ::-1],
        8: lambda x: np.rot90(x, 1),
    }
    return np.ascontiguousarray(ops[orientation](a))
