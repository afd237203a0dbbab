"""File formats: extensions, output format choice, and content sniffing."""

from __future__ import annotations

from pathlib import Path

# Extensions a batch walk treats as images (anything else in a folder is skipped).
IMAGE_EXTENSIONS = frozenset({
    ".png", ".tif", ".tiff", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".webp",
    ".gif", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".sgi", ".rgb", ".pcx", ".jp2",
})

# Image formats n3 neither reads nor writes: "-o x.heic" is a mistake to report, not a
# folder to create (any other name without a known extension is a folder).
FOREIGN_IMAGE_EXTENSIONS = frozenset({
    ".heic", ".heif", ".avif", ".jxl", ".exr", ".hdr", ".psd", ".svg", ".ico", ".dds", ".jpf", ".jpx",
})

# Camera raw extensions (libraw's common ones): these need ``--raw``.
RAW_EXTENSIONS = frozenset({
    ".3fr", ".ari", ".arw", ".bay", ".cr2", ".cr3", ".crw", ".dcr", ".dcs", ".dng", ".erf",
    ".fff", ".iiq", ".k25", ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef",
    ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
})

# Formats n3 writes; an input in any other format is written as PNG by default.
WRITE_FORMATS = ("png", "tiff", "jpeg", "bmp", "webp")
FORMAT_ALIASES = {"png": "png", "tif": "tiff", "tiff": "tiff", "jpg": "jpeg", "jpeg": "jpeg",
                  "bmp": "bmp", "webp": "webp"}
CANONICAL_EXT = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg", "bmp": ".bmp", "webp": ".webp"}
_EXT_FORMAT = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg",
               ".jpe": "jpeg", ".jfif": "jpeg", ".bmp": "bmp", ".dib": "bmp", ".webp": "webp"}

# Files a user never means as input: OS droppings and our own temp files.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", ".ds_store", "icon\r"})


def normalize_format(name: str) -> str:
    """``jpg`` -> ``jpeg`` etc.; raises ``ValueError`` for formats n3 cannot write."""
    key = name.strip().lower().lstrip(".")
    if key not in FORMAT_ALIASES:
        raise ValueError(f"unknown output format '{name}' (choose png, tiff, jpg, bmp or webp)")
    return FORMAT_ALIASES[key]


def format_for_extension(path: Path | str) -> str | None:
    """The write format implied by a file name's extension, or None."""
    return _EXT_FORMAT.get(Path(path).suffix.lower())


def output_extension(src: Path, fmt: str | None) -> str:
    """Extension of the output for ``src``: same as the input where n3 writes that format
    (keeping the user's spelling, e.g. ``.JPG``), else the chosen or default (PNG) one."""
    src_fmt = format_for_extension(src)
    if fmt is None:
        return src.suffix if src_fmt is not None else ".png"
    if src_fmt == fmt:
        return src.suffix
    return CANONICAL_EXT[fmt]


def is_hidden_or_system(path: Path) -> bool:
    """Dotfiles, AppleDouble files, Thumbs.db and the like."""
    name = path.name
    return name.startswith(".") or name.lower() in SYSTEM_FILES


def sniff(data: bytes) -> str | None:
    """Container type from the first bytes: 'png', 'tiff', 'jpeg' or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    return None
