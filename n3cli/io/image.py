"""The decoded-image type every codec returns and every writer takes.

A loaded image is an :class:`Image`: colour planes as float32 H x W x C in [0, 1]
(C = 1 gray or 3 RGB), alpha apart (it passes through denoising untouched), the source
bit depth (8, 16, or 32 for float) and the metadata worth carrying to the output.
This module is the bottom of :mod:`n3cli.io`: codecs (``png16``, ``tiff``, ``pillow_codec``)
import it, :mod:`n3cli.io.reader` dispatches to them, and nothing here imports a codec.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from n3cli.errors import ImageReadError

DEFAULT_MAX_PIXELS = 100_000_000
ORIENTATION_TAG = 0x0112
RAW_MESSAGE = "a camera raw file: only n3 denoise reads raw files (it writes a DNG)"


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
    premultiplied: bool = False  # associated alpha (TIFF ExtraSamples 1): colours are times alpha

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


def read_input_bytes(path: Path, what: str = "an image file") -> bytes:
    """The whole of an input file, or :class:`ImageReadError` with one line saying why not
    (missing, a directory, a FIFO or device, which would block or never end, unreadable,
    empty). ``what`` names what a directory is not, e.g. "a raw file"."""
    try:
        if path.exists() and not path.is_dir() and not stat.S_ISREG(path.stat().st_mode):
            raise ImageReadError(f"{path}: not a regular file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageReadError(f"{path}: is a directory, not {what}") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except OSError as err:
        raise ImageReadError(f"{path}: cannot read: {err.strerror or err}") from None
    if not data:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    return data


def check_size(width: int, height: int, name: str, max_pixels: int | None, scale: int = 1) -> None:
    """Refuse an empty image or one whose output (``scale`` x the input's size) is above
    ``max_pixels`` (before decoding it)."""
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{name}: invalid image size {width}x{height}")
    out_w, out_h = width * scale, height * scale
    if max_pixels and out_w * out_h > max_pixels:
        what = f"{width}x{height}" if scale == 1 else f"{width}x{height} upscaled x{scale} to {out_w}x{out_h}"
        raise ImageReadError(
            f"{name}: {what} is {_megapixels(out_w * out_h)}, above the limit of "
            f"{_megapixels(max_pixels)} (raise it with --max-pixels)")


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.1f} MP" if n >= 1e5 else f"{n:,} pixels"


def oriented_dpi(dpi: tuple[float, float] | None, orientation: int) -> tuple[float, float] | None:
    """The (x, y) DPI after :func:`orient`: orientations 5-8 swap the axes."""
    return (dpi[1], dpi[0]) if dpi and orientation >= 5 else dpi


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
