"""The Python API: n3cli.denoise and n3cli.upscale on arrays."""

from __future__ import annotations

import numpy as np
import pytest

import n3cli
from n3cli.errors import UsageError


def test_denoise_array_with_the_bundled_model():
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0.2, 0.8, 96, dtype=np.float32), (96, 1))
    noisy = clean + rng.normal(0, 25 / 255, clean.shape).astype(np.float32)
    out = n3cli.denoise(noisy, sigma=25, device="cpu")
    assert out.shape == noisy.shape
    assert np.mean((out - clean) ** 2) < 0.2 * np.mean((noisy - clean) ** 2)
    auto = n3cli.denoise(noisy, device="cpu")  # sigma estimated
    assert np.mean((auto - clean) ** 2) < 0.3 * np.mean((noisy - clean) ** 2)


def test_upscale_array(tiny):
    small = np.random.default_rng(1).random((20, 24, 3), dtype=np.float32)
    assert n3cli.upscale(small, 3, model="tiny-sr", device="cpu").shape == (60, 72, 3)
    assert n3cli.upscale(small[..., 0], 2, model="tiny-sr", device="cpu").shape == (40, 48)
    with pytest.raises(UsageError, match="does not upscale"):
        n3cli.upscale(small, 2, model="tiny-s25", device="cpu")
    with pytest.raises(UsageError, match="H x W"):
        n3cli.upscale(np.zeros((4, 4, 2)), 2, model="tiny-sr")


def test_integer_arrays_come_back_in_their_dtype():
    """uint8 / uint16 (what image readers return) are 8- / 16-bit images, not [0, 1] floats."""
    rng = np.random.default_rng(2)
    clean = np.tile(np.linspace(0.2, 0.8, 96), (96, 1))
    noisy = clean + rng.normal(0, 25 / 255, clean.shape)
    for dtype in (np.uint8, np.uint16):
        top = np.iinfo(dtype).max
        given = np.clip(np.rint(noisy * top), 0, top).astype(dtype)
        out = n3cli.denoise(given, sigma=25, device="cpu")
        assert out.dtype == dtype and out.shape == given.shape
        err = np.mean((out / top - clean) ** 2)
        assert err < 0.2 * np.mean((given / top - clean) ** 2)
        as_float = n3cli.denoise(given.astype(np.float32) / top, sigma=25, device="cpu")
        assert np.abs(out.astype(np.float64) - np.clip(as_float, 0, 1) * top).max() <= 0.5 + 1e-3 * top


def test_arrays_the_models_would_misread_are_refused():
    img = np.random.default_rng(3).random((24, 24))
    cases = [(img * 255, "float values up to"), (np.where(img > 0.5, np.nan, img), "NaN"),
             ((img * 255).astype(np.int32), "unsupported array dtype"),
             (np.zeros((24, 24, 4)), "H x W"), (np.zeros((0, 24)), "empty")]
    for arr, message in cases:
        with pytest.raises(UsageError, match=message):
            n3cli.denoise(arr, sigma=25, device="cpu")
    # Unclipped strong noise goes well beyond [0, 1] and is still a valid float image.
    noisy = img + np.random.default_rng(4).normal(0, 75 / 255, img.shape)
    assert n3cli.denoise(noisy, sigma=75, device="cpu").shape == img.shape
