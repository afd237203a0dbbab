"""Camera raw reading (n3cli.io.raw): the Kodak DC50 KDC, and every refusal."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import rawpy
import tifffile
from PIL import Image as PILImage

from n3cli.errors import ImageReadError
from n3cli.io.raw import XYZ_FROM_SRGB, is_camera_raw, mosaic_from_planes, read_raw

KDC = "raw/RAW_KODAK_DC50.KDC"
POSITIONS = ((0, 0), (0, 1), (1, 0), (1, 1))
RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def kdc(shared_file):
    return shared_file(KDC)


def test_kdc_planes_match_libraw(kdc):
    raw = read_raw(kdc)
    assert raw.planes.shape == (4, 256, 384) and raw.planes.dtype == np.float32
    assert raw.cfa == "GRBG"
    assert raw.black == (0.0, 0.0, 0.0, 0.0) and raw.white == 16383.0
    with rawpy.imread(str(kdc)) as rp:
        visible = rp.raw_image_visible.copy()
    assert np.array_equal(raw.visible, visible)
    for k, (dy, dx) in enumerate(POSITIONS):
        np.testing.assert_allclose(raw.planes[k], visible[dy::2, dx::2] / 16383.0, rtol=1e-6, atol=1e-7)


def test_kdc_round_trip_is_exact(kdc):
    raw = read_raw(kdc)
    back = mosaic_from_planes(raw.planes, raw)
    assert back.dtype == np.uint16 and np.array_equal(back, raw.visible)


def test_kdc_metadata(kdc):
    meta = read_raw(kdc).metadata
    assert meta.make == "Eastman Kodak Company"
    assert meta.model == "Kodak Digital Science DC50 Zoom Camera"
    assert meta.orientation == 1
    assert meta.iso == 84 and meta.exposure_time == 0.00435 and meta.f_number == 6.2
    assert meta.focal_length == 37 and meta.datetime == "1997:04:23 08:00:47"
    assert meta.as_shot_neutral == (1.0, 1.0, 1.0) and meta.noise_profile is None


def test_kdc_embedded_matrix_is_measured(kdc):
    """rawpy reports no matrix for the DC50, yet LibRaw applies the camera -> sRGB matrix of
    Kodak's tag 37400; the measured XYZ -> camera matrix must be its equivalent."""
    meta = read_raw(kdc).metadata
    assert meta.color_matrix_source == "embedded" and meta.illuminant == 21
    with tifffile.TiffFile(kdc) as tf:
        v = tf.pages.first.pages[0].tags[37400].value
    reals = [v[i] / v[i + 1] for i in range(0, len(v), 2)]
    kodak = np.array([reals[4 * i + 1:4 * i + 4] for i in range(3)])  # dcraw: skip one, read three
    rgb_cam = np.linalg.inv(np.array(meta.color_matrix) @ XYZ_FROM_SRGB)  # camera -> sRGB
    np.testing.assert_allclose(rgb_cam, kodak, atol=2e-3)


def test_is_camera_raw_by_content(kdc, tmp_path):
    data = kdc.read_bytes()
    renamed = tmp_path / "no_extension"
    renamed.write_bytes(data)
    assert is_camera_raw(kdc) and is_camera_raw(data) and is_camera_raw(renamed)
    png = tmp_path / "x.png"
    PILImage.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(png)
    noise = tmp_path / "noise.kdc"
    noise.write_bytes(RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    gray = tmp_path / "gray.tif"
    tifffile.imwrite(gray, RNG.integers(0, 65535, (64, 64), dtype=np.uint16))
    assert not is_camera_raw(png) and not is_camera_raw(noise) and not is_camera_raw(gray)
    assert not is_camera_raw(tmp_path / "missing.nef") and not is_camera_raw(b"")


def _one_line(err: pytest.ExceptionInfo, *words: str) -> str:
    text = str(err.value)
    assert "\n" not in text and err.value.exit_code == 1
    for word in words:
        assert word in text, text
    return text


_DNG = [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True),
        (50708, "s", 0, "Test Cam", True), (271, "s", 0, "TestMake", True), (272, "s", 0, "TestModel", True),
        (50717, "I", 1, 4095, True), (50778, "H", 1, 21, True),
        (50721, "2i", 9, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1), True)]


def test_refuses_linear_dng(tmp_path):
    path = tmp_path / "linear.dng"
    rgb = RNG.integers(0, 4095, (40, 50, 3), dtype=np.uint16)
    tifffile.imwrite(path, rgb, photometric=34892, planarconfig="contig", subfiletype=0, metadata=None,
                     extratags=_DNG)
    assert is_camera_raw(path)  # a camera raw, just not a mosaic
    with pytest.raises(ImageReadError) as err:
        read_raw(path)
    _one_line(err, "linear.dng", "demosaiced", "original raw")


def test_refuses_rgb_dng_and_ordinary_tiffs(tmp_path):
    rgb = RNG.integers(0, 65535, (40, 50, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rgb.dng", rgb, photometric="rgb", metadata=None, extratags=_DNG)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    with pytest.raises(ImageReadError) as err:
        read_raw(tmp_path / "rgb.dng")
    _one_line(err, "not a camera raw LibRaw can decode")
    with pytest.raises(ImageReadError) as err:
        read_raw(tmp_path / "rgb.tif")
    _one_line(err, "not a camera raw")
    # LibRaw "decodes" a 16-bit gray TIFF as a Bayer raw: it must still be refused.
    tifffile.imwrite(tmp_path / "gray.tif", rgb[..., 0], photometric="minisblack")
    with pytest.raises(ImageReadError) as err:
        read_raw(tmp_path / "gray.tif")
    _one_line(err, "ordinary TIFF")


def test_refuses_x_trans(tmp_path):
    path = tmp_path / "xtrans.dng"
    xtrans = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1,
              1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]
    tags = _DNG + [(33421, "H", 2, (6, 6), True), (33422, "B", 36, bytes(xtrans), True),
                   (50710, "B", 3, (0, 1, 2), True)]
    tifffile.imwrite(path, RNG.integers(0, 4095, (60, 72), dtype=np.uint16), photometric="cfa",
                     subfiletype=0, metadata=None, extratags=tags)
    with pytest.raises(ImageReadError) as err:
        read_raw(path)
    _one_line(err, "X-Trans", "2x2 Bayer")


def test_refuses_monochrome(tmp_path):
    """A one-sample LinearRaw DNG (a monochrome sensor): tifffile will not write one, so a
    MinIsBlack DNG is patched to PhotometricInterpretation 34892."""
    path = tmp_path / "mono.dng"
    tifffile.imwrite(path, RNG.integers(0, 4095, (60, 72), dtype=np.uint16), photometric="minisblack",
                     subfiletype=0, metadata=None, extratags=_DNG[:6])
    data = bytearray(path.read_bytes())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry:entry + 2])[0] == 262:
            data[entry + 8:entry + 10] = struct.pack("<H", 34892)
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as err:
        read_raw(path)
    _one_line(err, "monochrome")


def test_refuses_truncated_raw(kdc, tmp_path):
    path = tmp_path / "cut.kdc"
    path.write_bytes(kdc.read_bytes()[:40000])
    with pytest.raises(ImageReadError) as err:
        read_raw(path)
    _one_line(err, "cut.kdc", "truncated")


def test_refuses_undecodable_files(tmp_path):
    noise = tmp_path / "noise.nef"
    noise.write_bytes(RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    png = tmp_path / "photo.png"
    PILImage.fromarray(RNG.integers(0, 256, (16, 16), dtype=np.uint8)).save(png)
    (tmp_path / "empty.cr2").write_bytes(b"")
    for path, words in ((noise, ("noise.nef", "not a camera raw LibRaw can decode")),
                        (png, ("photo.png", "not a camera raw")),
                        (tmp_path / "empty.cr2", ("empty",)),
                        (tmp_path / "missing.arw", ("no such file",)),
                        (tmp_path, ("directory",))):
        with pytest.raises(ImageReadError) as err:
            read_raw(path)
        _one_line(err, *words)


def test_a_raw_under_an_image_name_is_not_read_as_its_thumbnail(kdc, tmp_path):
    """A TIFF-based raw named .tif or .png: image readers find its small embedded preview
    (96x64 here) and would denoise that as if it were the photo."""
    from n3cli.errors import ImageReadError
    from n3cli.io import read_image

    for name in ("cam.tif", "cam.png"):
        fake = tmp_path / name
        fake.write_bytes(kdc.read_bytes())
        with pytest.raises(ImageReadError, match="camera raw file under an image file's name"):
            read_image(fake)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, RNG.integers(0, 65535, (64, 64), dtype=np.uint16))
    assert read_image(plain).width == 64
