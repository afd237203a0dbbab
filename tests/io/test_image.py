"""Faithful image I/O: bit depth, channels, alpha, orientation, metadata, errors."""

from __future__ import annotations

import io
from dataclasses import replace
import struct
import subprocess
import sys
import zlib

import numpy as np
import png
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from n3cli.errors import ImageReadError, N3Error, UsageError
from n3cli.io import Image, Metadata, decode_image, read_image, write_image

RNG = np.random.default_rng(1234)
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _random(depth: int, shape: tuple[int, ...]) -> np.ndarray:
    if depth == 32:
        return RNG.random(shape, dtype=np.float32)
    top = 255 if depth == 8 else 65535
    return (RNG.integers(0, top + 1, shape) / top).astype(np.float32)


@pytest.mark.parametrize("fmt,depth", [("png", 8), ("png", 16), ("tiff", 8), ("tiff", 16), ("tiff", 32)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_lossless_round_trip(tmp_path, fmt, depth, channels, with_alpha):
    img = Image(pixels=_random(depth, (24, 31, channels)), bit_depth=depth,
                alpha=_random(depth, (24, 31)) if with_alpha else None,
                metadata=Metadata(icc=SRGB, dpi=(300.0, 150.0)))
    path = tmp_path / f"x.{fmt}"
    assert write_image(path, img) == []
    back = read_image(path)
    assert back.bit_depth == depth and back.channels == channels
    assert back.pixels.shape == (24, 31, channels)
    np.testing.assert_array_equal(back.pixels, img.pixels)
    if with_alpha:
        np.testing.assert_array_equal(back.alpha, img.alpha)
    else:
        assert back.alpha is None
    assert back.metadata.icc == SRGB
    assert back.metadata.dpi == pytest.approx((300.0, 150.0), rel=1e-3)


def test_16bit_png_read_exactly_from_an_independent_encoder(tmp_path):
    """pypng writes, we read: every 16-bit value survives (no 8-bit * 257)."""
    a = RNG.integers(0, 65536, (24, 31, 3), dtype=np.uint16)
    with open(tmp_path / "p.png", "wb") as f:
        png.Writer(31, 24, greyscale=False, bitdepth=16).write(f, a.reshape(24, -1))
    back = read_image(tmp_path / "p.png")
    assert back.bit_depth == 16 and back.source_mode == "RGB;16"
    np.testing.assert_array_equal(np.rint(back.pixels * 65535).astype(np.uint16), a)
    assert np.any(a % 257 != 0)


def test_16bit_png_written_is_16bit_for_an_independent_decoder(tmp_path):
    a = RNG.integers(0, 65536, (24, 31, 3), dtype=np.uint16)
    write_image(tmp_path / "o.png", Image(pixels=a.astype(np.float32) / 65535, bit_depth=16))
    w, h, rows, info = png.Reader(filename=str(tmp_path / "o.png")).asDirect()
    assert info["bitdepth"] == 16 and info["planes"] == 3
    np.testing.assert_array_equal(np.vstack(list(rows)).reshape(24, 31, 3), a)


def test_16bit_gray_alpha_png(tmp_path):
    la = RNG.integers(0, 65536, (24, 31, 2), dtype=np.uint16)
    with open(tmp_path / "la.png", "wb") as f:
        png.Writer(31, 24, greyscale=True, alpha=True, bitdepth=16).write(f, la.reshape(24, -1))
    back = read_image(tmp_path / "la.png")
    assert back.mode == "LA" and back.bit_depth == 16
    np.testing.assert_array_equal(np.rint(back.alpha * 65535), la[..., 1])
    write_image(tmp_path / "out.png", back)
    again = read_image(tmp_path / "out.png")
    np.testing.assert_array_equal(again.pixels, back.pixels)
    np.testing.assert_array_equal(again.alpha, back.alpha)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_and_reset(tmp_path, orientation):
    a = RNG.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    pim = PILImage.fromarray(a)
    exif = pim.getexif()
    exif[0x0112] = orientation
    pim.save(tmp_path / "o.png", exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "o.png")))
    back = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(np.rint(back.pixels * 255).astype(np.uint8), expected)
    write_image(tmp_path / "w.png", back)
    out = PILImage.open(tmp_path / "w.png")
    assert out.getexif().get(0x0112) == 1
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_jpeg_keeps_exif_icc_dpi_and_can_strip(tmp_path):
    a = RNG.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    pim = PILImage.fromarray(a)
    exif = pim.getexif()
    exif[0x010F] = "TestCam"  # Make
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # Exif sub-IFD: DateTimeOriginal
    exif.get_ifd(0x8825)[1] = "N"  # GPS sub-IFD
    pim.save(tmp_path / "in.jpg", quality=95, exif=exif, icc_profile=SRGB, dpi=(240, 240))
    img = read_image(tmp_path / "in.jpg")
    assert img.format == "jpeg" and img.bit_depth == 8 and img.color
    write_image(tmp_path / "out.jpg", img)
    out = PILImage.open(tmp_path / "out.jpg")
    assert out.getexif().get(0x010F) == "TestCam"
    assert out.getexif().get_ifd(0x8769).get(0x9003) == "2024:01:02 03:04:05"
    assert out.getexif().get_ifd(0x8825).get(1) == "N"
    assert out.info.get("icc_profile") == SRGB
    assert out.info.get("dpi") == pytest.approx((240, 240))
    write_image(tmp_path / "bare.jpg", img, strip_metadata=True)
    bare = PILImage.open(tmp_path / "bare.jpg")
    assert not bare.getexif() and "icc_profile" not in bare.info


def test_palette_images(tmp_path):
    gray = PILImage.fromarray(RNG.integers(0, 256, (10, 12), dtype=np.uint8)).convert("P")
    gray.save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").mode == "L"
    col = PILImage.fromarray(RNG.integers(0, 256, (10, 12, 3), dtype=np.uint8)).quantize(16)
    col.save(tmp_path / "c.png")
    c = read_image(tmp_path / "c.png")
    assert c.mode == "RGB" and c.notes
    col.save(tmp_path / "t.png", transparency=0)
    assert read_image(tmp_path / "t.png").mode == "RGBA"


def test_a_transparent_colour_key_becomes_alpha(tmp_path):
    """8-bit gray / RGB PNGs with a tRNS key: the keyed pixels stay transparent."""
    rgb = np.full((4, 5, 3), (10, 20, 30), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    PILImage.fromarray(rgb).save(tmp_path / "rgb.png", transparency=(10, 20, 30))
    gray = np.full((4, 5), 7, np.uint8)
    gray[0, 0] = 9
    PILImage.fromarray(gray).save(tmp_path / "gray.png", transparency=7)
    for name, mode in (("rgb.png", "RGBA"), ("gray.png", "LA")):
        img = read_image(tmp_path / name)
        assert img.mode == mode and any("tRNS" in n for n in img.notes)
        assert img.alpha[0, 0] == 1.0 and (img.alpha.ravel()[1:] == 0.0).all()


def test_cmyk_becomes_rgb_without_its_profile(tmp_path):
    PILImage.new("CMYK", (9, 7), (10, 200, 30, 0)).save(tmp_path / "k.jpg", icc_profile=b"cmyk-profile")
    img = read_image(tmp_path / "k.jpg")
    assert img.mode == "RGB" and img.metadata.icc is None and any("CMYK" in n for n in img.notes)


def test_bmp_and_alpha_to_jpeg_note(tmp_path):
    img = Image(pixels=_random(8, (9, 11, 3)), alpha=_random(8, (9, 11)))
    # Pillow's 32-bit BMP has no alpha mask (readers take it as RGB): dropped, and said.
    assert any("alpha" in n for n in write_image(tmp_path / "a.bmp", img))
    back = read_image(tmp_path / "a.bmp")
    np.testing.assert_array_equal(back.pixels, img.pixels)
    assert back.alpha is None and back.mode == "RGB"
    gray = Image(pixels=_random(8, (9, 11, 1)), alpha=_random(8, (9, 11)))
    assert any("alpha" in n for n in write_image(tmp_path / "g.bmp", gray))
    assert read_image(tmp_path / "g.bmp").mode == "L"
    notes = write_image(tmp_path / "a.jpg", img)
    assert any("alpha" in n for n in notes)
    notes = write_image(tmp_path / "b.jpg", Image(pixels=_random(16, (9, 11, 1)), bit_depth=16))
    assert any("8-bit" in n for n in notes)


def test_float_tiff_outside_unit_range_is_kept(tmp_path):
    a = (RNG.random((8, 9)) * 3 - 1).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", a)
    img = read_image(tmp_path / "f.tif")
    assert img.bit_depth == 32 and not img.unit_range
    write_image(tmp_path / "g.tif", img)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "g.tif"), a)


def test_float_written_as_integers_says_it_clips(tmp_path):
    a = np.linspace(-1, 2, 8 * 9, dtype=np.float32).reshape(8, 9)
    tifffile.imwrite(tmp_path / "f.tif", a)
    notes = write_image(tmp_path / "f.png", read_image(tmp_path / "f.tif"))
    assert any("outside [0, 1] clipped" in n for n in notes)
    tifffile.imwrite(tmp_path / "u.tif", np.clip(a, 0, 1))  # in range: nothing to say
    assert not any("clipped" in n for n in write_image(tmp_path / "u.png", read_image(tmp_path / "u.tif")))


def test_associated_alpha_stays_associated_or_is_divided_out(tmp_path):
    rgb = RNG.integers(0, 256, (6, 7, 3)).astype(np.float64)
    alpha = RNG.integers(1, 256, (6, 7)).astype(np.float64)
    pre = np.rint(rgb * alpha[..., None] / 255).astype(np.uint8)  # premultiplied colours
    tifffile.imwrite(tmp_path / "p.tif", np.dstack([pre, alpha.astype(np.uint8)]), photometric="rgb",
                     extrasamples=["assocalpha"])
    img = read_image(tmp_path / "p.tif")
    assert img.premultiplied
    assert write_image(tmp_path / "q.tif", img) == []
    with tifffile.TiffFile(tmp_path / "q.tif") as tf:
        assert tuple(np.atleast_1d(tf.pages[0].tags["ExtraSamples"].value)) == (1,)
    np.testing.assert_array_equal(read_image(tmp_path / "q.tif").pixels, img.pixels)
    notes = write_image(tmp_path / "q.png", img)
    assert any("un-premultiplied" in n for n in notes)
    back = np.asarray(PILImage.open(tmp_path / "q.png")).astype(np.float64)
    np.testing.assert_array_equal(back[..., 3], alpha)
    want = np.clip(pre / (alpha[..., None] / 255), 0, 255)
    assert np.abs(back[..., :3] - want).max() <= 0.51
    tifffile.imwrite(tmp_path / "u.tif", np.dstack([pre, alpha.astype(np.uint8)]), photometric="rgb",
                     extrasamples=["unassalpha"])
    assert not read_image(tmp_path / "u.tif").premultiplied


def test_exif_pixel_dimensions_follow_the_written_size(tmp_path):
    exif = PILImage.Exif()
    exif[0x0112] = 6
    exif.get_ifd(0x8769).update({0xA002: 40, 0xA003: 24})
    a = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    PILImage.fromarray(a).save(tmp_path / "r.jpg", exif=exif)
    img = read_image(tmp_path / "r.jpg")
    assert (img.width, img.height) == (24, 40)  # rotated upright
    write_image(tmp_path / "o.jpg", img)
    ifd = PILImage.open(tmp_path / "o.jpg").getexif().get_ifd(0x8769)
    assert (ifd[0xA002], ifd[0xA003]) == (24, 40)


def test_dpi_follows_rotation_and_every_field_agrees(tmp_path):
    """A rotated image swaps its x/y DPI; EXIF's X/YResolution say what JFIF / pHYs say;
    WebP, whose only DPI field is EXIF's, reads and writes it there."""
    exif = PILImage.Exif()
    exif[0x0112], exif[0x011A], exif[0x011B], exif[0x0128] = 6, 300.0, 150.0, 2
    a = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    PILImage.fromarray(a).save(tmp_path / "r.jpg", exif=exif, dpi=(300, 150))
    img = read_image(tmp_path / "r.jpg")
    assert img.metadata.dpi == pytest.approx((150, 300))  # rotated upright: the axes swap
    write_image(tmp_path / "o.jpg", replace(img, metadata=replace(img.metadata, dpi=(450.0, 900.0))))
    out = PILImage.open(tmp_path / "o.jpg")
    ex = out.getexif()
    assert out.info["dpi"] == pytest.approx((450, 900))
    assert (float(ex[0x011A]), float(ex[0x011B]), ex[0x0128]) == (450.0, 900.0, 2)
    cm = PILImage.Exif()
    cm[0x011A], cm[0x011B], cm[0x0128] = 100.0, 100.0, 3  # per centimetre
    PILImage.fromarray(a).save(tmp_path / "w.webp", exif=cm)
    w = read_image(tmp_path / "w.webp")
    assert w.metadata.dpi == pytest.approx((254, 254))
    write_image(tmp_path / "w2.webp", replace(w, metadata=Metadata(dpi=(600.0, 600.0))))  # no EXIF given
    assert read_image(tmp_path / "w2.webp").metadata.dpi == pytest.approx((600, 600))


def test_output_larger_than_its_format_fails_before_writing(tmp_path):
    img = Image(pixels=np.zeros((1, 16400, 1), np.float32))
    with pytest.raises(N3Error, match="WebP|WEBP"):
        write_image(tmp_path / "w.webp", img)
    assert list(tmp_path.iterdir()) == []
    assert any("gray written as RGB" in n for n in write_image(tmp_path / "g.webp", Image(pixels=_random(8, (5, 6, 1)))))


def test_lzw_tiff_and_multipage(tmp_path):
    a = RNG.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    PILImage.fromarray(a).save(tmp_path / "l.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(np.rint(read_image(tmp_path / "l.tif").pixels * 255), a)
    with tifffile.TiffWriter(tmp_path / "m.tif") as tw:
        tw.write(a)
        tw.write(a[::-1].copy())
    m = read_image(tmp_path / "m.tif")
    assert any("first of 2" in n for n in m.notes)


def test_tiny_images(tmp_path):
    for shape in [(1, 1), (1, 7), (5, 1)]:
        PILImage.fromarray(np.full(shape, 7, np.uint8)).save(tmp_path / "t.png")
        assert read_image(tmp_path / "t.png").pixels.shape == shape + (1,)


def test_pixel_limit_from_header_only(tmp_path):
    """A PNG claiming 100000 x 100000 pixels is refused before anything is decoded."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    (tmp_path / "huge.png").write_bytes(data)
    with pytest.raises(ImageReadError, match=r"huge.png: 100000x100000 .*--max-pixels"):
        read_image(tmp_path / "huge.png")
    PILImage.new("L", (50, 40)).save(tmp_path / "small.png")
    with pytest.raises(ImageReadError, match="above the limit"):
        read_image(tmp_path / "small.png", max_pixels=1000)
    assert read_image(tmp_path / "small.png", max_pixels=2000).width == 50


def _valid_png() -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(RNG.integers(0, 256, (40, 40), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _valid_jpeg() -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(RNG.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("name,content,match", [
    ("empty.png", b"", "empty file"),
    ("text.png", b"hello, I am not a picture\n", r"not an image \(text contents in a .png file\)"),
    ("junk.bin", bytes(range(256)) * 4, "not an image"),
    ("trunc.png", _valid_png()[:200], "truncated|corrupt"),
    ("trunc.jpg", _valid_jpeg()[:300], "truncated|corrupt"),
    ("badtiff.tif", b"II*\x00" + b"\xff" * 60, "corrupt|truncated"),
])
def test_bad_files_give_one_line_naming_the_file(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(tmp_path / name)
    line = info.value.one_line()
    assert name in line and "\n" not in line


def test_missing_directory_and_raw(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)
    (tmp_path / "cam.KDC").write_bytes(b"\x00" * 10)
    with pytest.raises(UsageError, match="only n3 denoise reads raw files"):
        read_image(tmp_path / "cam.KDC")


def test_decode_image_bytes_api():
    img = decode_image(_valid_png())
    assert img.pixels.dtype == np.float32 and img.pixels.shape == (40, 40, 1)
    with pytest.raises(N3Error):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_independent_decoder_sees_16bit_output(tmp_path, channels, with_alpha):
    """pypng (pure Python, no libpng) reads our 16-bit PNGs sample for sample."""
    img = Image(pixels=_random(16, (6, 7, channels)), bit_depth=16,
                alpha=_random(16, (6, 7)) if with_alpha else None)
    write_image(tmp_path / "o.png", img)
    width, height, rows, info = png.Reader(filename=str(tmp_path / "o.png")).read()
    a = np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(height, width, -1)
    assert info["bitdepth"] == 16 and info["greyscale"] == (channels == 1) and info["alpha"] == with_alpha
    want = np.rint(img.pixels * 65535)
    if with_alpha:
        want = np.concatenate([want, np.rint(img.alpha * 65535)[..., None]], axis=2)
    np.testing.assert_array_equal(a, want)


def test_16bit_png_from_an_independent_encoder(tmp_path):
    """Files written by pypng (adaptive rows, interlaced, tRNS key) decode to the same samples."""
    a = RNG.integers(0, 65536, (9, 11, 3), dtype=np.uint16)

    def pypng_file(name: str, **kw):
        with open(tmp_path / name, "wb") as f:
            png.Writer(11, 9, greyscale=False, bitdepth=16, **kw).write(f, a.reshape(9, -1))
        return read_image(tmp_path / name)

    for kw in ({}, {"interlace": True}):
        back = pypng_file("p.png", **kw)
        assert back.bit_depth == 16 and back.alpha is None
        np.testing.assert_array_equal(np.rint(back.pixels * 65535), a)
    back = pypng_file("t.png", transparent=tuple(int(v) for v in a[0, 0]))
    assert back.alpha is not None and back.alpha[0, 0] == 0 and back.alpha.max() == 1


def test_16bit_png_orientation_and_metadata_chunks(tmp_path):
    from n3cli.io.png16 import encode_png16
    from n3cli.io.png_chunks import add_metadata

    a = RNG.integers(0, 65536, (6, 10, 3), dtype=np.uint16)
    exif = PILImage.Exif()
    exif[0x0112] = 6
    data = add_metadata(encode_png16(a, None, Metadata()), icc=SRGB, dpi=(72.0, 72.0), exif=exif.tobytes())
    (tmp_path / "r.png").write_bytes(data)
    img = read_image(tmp_path / "r.png")
    assert img.bit_depth == 16 and img.pixels.shape == (10, 6, 3)  # rotated upright
    np.testing.assert_array_equal(np.rint(img.pixels * 65535), np.rot90(a, -1))
    assert img.metadata.icc == SRGB and img.metadata.dpi == pytest.approx((72, 72), rel=1e-3)
    check = PILImage.Exif()
    check.load(img.metadata.exif)
    assert check[0x0112] == 1


def test_16bit_png_with_broken_ancillary_chunks_decodes_quietly(tmp_path):
    """libpng printed 'PNG warning: eXIf: invalid' on stderr for such files; the pixel
    decoder now gets the critical chunks (and tRNS) only."""
    from n3cli.io.png_chunks import chunk

    a = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
    buf = io.BytesIO()
    png.Writer(7, 6, greyscale=True, bitdepth=16).write(buf, a)
    data = buf.getvalue()
    bad = data[:33] + chunk(b"eXIf", b"not a TIFF header at all") + data[33:]
    (tmp_path / "b.png").write_bytes(bad)
    img = read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(np.rint(img.pixels[..., 0] * 65535).astype(np.uint16), a)
    # libpng writes on the C stderr, which pytest's capture does not always see: a process.
    code = f"from n3cli.io import read_image; read_image({str(tmp_path / 'b.png')!r})"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
