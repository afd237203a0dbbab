"""Reading images: the one entry point (:func:`read_image` / :func:`decode_image`) that
sniffs the container and hands it to a codec.

Codecs: 16-bit PNG through imagecodecs (libpng; Pillow reduces 16-bit colour PNGs to 8
bits), TIFF through tifffile (16-bit and float samples), everything else through Pillow.
Every failure becomes :class:`ImageReadError` (or :class:`UsageError` for camera raw
files) naming the file: nothing else escapes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageFile

from n3cli.errors import ImageReadError, N3Error, UsageError
from n3cli.io.formats import RAW_EXTENSIONS, sniff
from n3cli.io.image import DEFAULT_MAX_PIXELS, RAW_MESSAGE, Image, check_size, read_input_bytes
from n3cli.io.pillow_codec import decode_pillow
from n3cli.io.png_chunks import read_ihdr


def read_image(path: Path | str, max_pixels: int | None = DEFAULT_MAX_PIXELS, scale: int = 1) -> Image:
    """Decode ``path``; raise :class:`ImageReadError` with a one-line reason on failure.

    ``max_pixels`` bounds the output, ``scale`` times the image's size (an upscaler's)."""
    path = Path(path)
    if path.suffix.lower() in RAW_EXTENSIONS:
        raise UsageError(f"{path}: {RAW_MESSAGE}")
    data = read_input_bytes(path)
    return decode_image(data, name=str(path), max_pixels=max_pixels, scale=scale)


def probe_size(path: Path | str) -> tuple[int, int] | None:
    """(width, height) from the file's header, no pixels decoded; None where the header
    does not say (the real read reports why). For ``--dry-run``'s size checks."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saved, PILImage.MAX_IMAGE_PIXELS = PILImage.MAX_IMAGE_PIXELS, None  # sizes only
            try:
                with PILImage.open(path) as img:
                    return int(img.width), int(img.height)
            finally:
                PILImage.MAX_IMAGE_PIXELS = saved
    except Exception:
        pass
    try:  # TIFF layouts Pillow does not open (float, planar): tifffile reads the tags
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return int(page.imagewidth), int(page.imagelength)
    except Exception:
        return None


def vet_sizes(item_src: Path, item_dst: Path, fmt: str | None, max_pixels: int | None,
              scale: int = 1) -> str | None:
    """Why reading ``item_src`` or writing its output would be refused for its size (the
    pixel limit on the output, the output format's largest side), judged from the
    header; None if the header shows nothing wrong. The messages are the real run's."""
    from n3cli.io.writer import check_output_size

    size = probe_size(item_src)
    if size is None:
        return None
    try:
        check_size(size[0], size[1], str(item_src), max_pixels, scale)
        check_output_size(item_dst, fmt, size[0] * scale, size[1] * scale)
    except N3Error as err:
        return str(err)
    return None


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 scale: int = 1) -> Image:
    """Decode image bytes; any decoder failure becomes :class:`ImageReadError`."""
    if not data:
        raise ImageReadError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Decoder chatter (bomb warnings, odd EXIF) is not the user's business.
            warnings.simplefilter("ignore")
            return _decode(data, name, max_pixels, scale)
    except N3Error:
        raise
    except Exception as err:  # decoders raise anything: map it to one clear line
        raise ImageReadError(f"{name}: {_reason(err, data, name)}") from err


def _reason(err: Exception, data: bytes, name: str) -> str:
    if isinstance(err, ModuleNotFoundError) and err.name:  # a broken install, not a broken file
        return f"decoding this file needs the Python package '{err.name}' (reinstall n3cli)"
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


def _decode(data: bytes, name: str, max_pixels: int | None, scale: int) -> Image:
    # Pillow's own bomb check must agree with ours (it errors at 2x its limit).
    PILImage.MAX_IMAGE_PIXELS = max_pixels if max_pixels else None
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # truncated files are errors, not gray bands
    kind = sniff(data)
    if kind == "png":
        width, height, depth, ctype = read_ihdr(data)
        check_size(width, height, name, max_pixels, scale)
        if depth == 16:
            from n3cli.io.png16 import decode_png16  # imagecodecs: imported when needed
            return decode_png16(data, ctype)
    elif kind == "tiff":
        from n3cli.io.tiff import decode_tiff  # tifffile: imported when needed
        from n3cli.io.raw import is_camera_raw

        if is_camera_raw(data):  # TIFF-based raws: an image reader would take a thumbnail for the image
            raise ImageReadError(f"{name}: a camera raw file under an image file's name (its thumbnail is "
                                 "all an image reader sees)", "give it its raw extension (e.g. .NEF, .DNG, .KDC)")
        image = decode_tiff(data, name, max_pixels, scale)
        if image is not None:
            return image
    try:
        return decode_pillow(data, name, max_pixels, scale)
    except PILImage.UnidentifiedImageError:
        from n3cli.io.raw import is_camera_raw

        if is_camera_raw(data):
            raise UsageError(f"{name}: {RAW_MESSAGE}") from None
        raise
