"""Adding metadata chunks (iCCP, pHYs, eXIf) to PNG bytes made by an encoder that
cannot write them (OpenCV and pypng, used for 16-bit colour PNGs)."""

from __future__ import annotations

import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC over type + data."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def read_ihdr(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's header chunk."""
    if data[:8] != _SIGNATURE or data[12:16] != b"IHDR" or len(data) < 29:
        raise ValueError("not a PNG header")
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, ctype


# What a decoder needs for the pixels: the critical chunks, and tRNS (a colour key that
# becomes alpha).
_PIXEL_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS"}


def _strip_chunks(data: bytes, kinds: set[bytes], keep_only: bool = False) -> bytes:
    """Drop chunks of the given types (so ours are not duplicated); ``keep_only``: drop
    every chunk *not* of those types."""
    out, pos = [data[:8]], 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if (kind in kinds) == keep_only:
            out.append(data[pos:end])
        pos = end
    return b"".join(out)


def pixel_chunks_only(data: bytes) -> bytes:
    """The PNG without its ancillary chunks but tRNS, for a pixel decoder: libpng prints
    its complaints about them (a malformed eXIf, a known-incorrect sRGB iCCP) on stderr,
    while the metadata is read separately, by Pillow."""
    return _strip_chunks(data, _PIXEL_CHUNKS, keep_only=True)


def add_metadata(data: bytes, icc: bytes | None = None, dpi: tuple[float, float] | None = None,
                 exif: bytes | None = None) -> bytes:
    """Insert iCCP / pHYs / eXIf right after IHDR (all must precede IDAT)."""
    extra = []
    if icc:
        extra.append(chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if dpi:
        ppm = [max(1, round(float(d) / 0.0254)) for d in dpi]
        extra.append(chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    if exif:
        raw = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
        extra.append(chunk(b"eXIf", raw))
    if not extra:
        return data
    data = _strip_chunks(data, {b"iCCP", b"pHYs", b"eXIf", b"sRGB", b"gAMA"} if icc else
                         {b"pHYs", b"eXIf"})
    ihdr_end = 8 + 12 + 13
    return data[:ihdr_end] + b"".join(extra) + data[ihdr_end:]
