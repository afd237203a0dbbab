"""Fuzzing the loader: random and mutated image bytes may fail, but only as N3Error.

Brief by default (CI); more with ``N3_FUZZ_EXAMPLES=5000 pytest tests/io/test_fuzz.py``.
"""

from __future__ import annotations

import io
import os

import numpy as np
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from n3cli.errors import N3Error
from n3cli.io import decode_image
from n3cli.io.image import Metadata
from n3cli.io.png16 import encode_png16

EXAMPLES = int(os.environ.get("N3_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("N3_FUZZ_EXAMPLES"),
                suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = PILImage.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8))
    out = []
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 80}), ("BMP", {}), ("GIF", {}), ("WEBP", {}),
                    ("TIFF", {"compression": "tiff_lzw"})):
        buf = io.BytesIO()
        rgb.save(buf, fmt, **kw)
        out.append(buf.getvalue())
    buf = io.BytesIO()
    tifffile.imwrite(buf, rng.random((9, 11), dtype=np.float32))
    out.append(buf.getvalue())
    out.append(encode_png16(rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16), None, Metadata()))
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "splice"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            data = data[:pos] + data[pos + draw(st.integers(1, 64)):]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            data = data[:pos]
    return bytes(data)


def _check(data: bytes) -> None:
    try:
        img = decode_image(data, name="fuzz.bin", max_pixels=4_000_000)
    except N3Error as err:
        assert "fuzz.bin" in err.one_line() and "\n" not in err.one_line()
        return
    assert img.pixels.dtype == np.float32 and img.pixels.ndim == 3 and img.pixels.shape[2] in (1, 3)
    if img.alpha is not None:
        assert img.alpha.shape == img.pixels.shape[:2]


@FUZZ
@given(mutated())
def test_mutated_images(data):
    _check(data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data):
    _check(data)


@FUZZ
@given(st.sampled_from([s[:8] for s in SEEDS]), st.binary(max_size=256))
def test_valid_magic_random_body(magic, body):
    _check(magic + body)
