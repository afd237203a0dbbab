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


def test_bad_arguments_are_one_usage_error(tiny):
    """What the CLI's options check, the API checks too: one UsageError, nothing run."""
    img = np.random.default_rng(5).random((24, 24), dtype=np.float32)
    denoise_cases = [
        (dict(sigma="25"), "sigma must be a number"), (dict(sigma=True), "sigma must be a number"),
        (dict(sigma=-5), "out of range"), (dict(sigma=0), "out of range"), (dict(sigma=1e6), "out of range"),
        (dict(sigma=float("nan")), "out of range"), (dict(sigma=float("inf")), "out of range"),
        (dict(sigma=25, model="tiny-sr"), "is an sr model, it cannot denoise"),
        (dict(sigma=25, model="tiny-raw"), "is a raw-denoise model, it cannot denoise"),
        (dict(sigma=25, ensemble=3), "ensemble 3 must be one of"),
        (dict(sigma=25, gray_on_color="xyz"), "gray_on_color 'xyz'"),
        (dict(sigma=25, max_memory="lots"), "max_memory 'lots' is not a size"),
        (dict(sigma=25, max_memory=0), "must be a positive size"),
        (dict(sigma=25, tile=5), "below the smallest tile"), (dict(sigma=25, tile="big"), "tile 'big'"),
        (dict(sigma=25, threads=0), "threads 0"), (dict(sigma=25, precision="fp8"), "unknown precision"),
    ]
    for kw, message in denoise_cases:
        with pytest.raises(UsageError, match=message):
            n3cli.denoise(img, **{"model": "tiny-s25", "device": "cpu", **kw})
    with pytest.raises(UsageError, match="cannot estimate the noise of a 1x1 image"):
        n3cli.denoise(np.zeros((1, 1), np.float32), device="cpu")
    for scale in (0, False, 2.5, "x", None, 5):
        with pytest.raises(UsageError, match="scale"):
            n3cli.upscale(img, scale, model="tiny-sr", device="cpu")
    assert n3cli.upscale(img, 2.0, model="tiny-sr", device="cpu").shape == (48, 48)  # 2.0 is 2
    # Big-endian 16-bit data is the same numbers: it comes back as native uint16.
    be = (img * 65535).astype(">u2")
    out = n3cli.denoise(be, sigma=25, model="tiny-s25", device="cpu")
    assert out.dtype == np.uint16 and out.shape == be.shape


def test_a_call_leaves_the_callers_torch_as_it_was(tiny):
    """threads= applies to the call only; NumPy integers count as integers."""
    import torch

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    small = np.random.default_rng(4).random((16, 18), dtype=np.float32)
    out = n3cli.upscale(small, np.int64(2), model="tiny-sr", device="cpu", threads=np.int64(other),
                        tile=np.int64(16))
    assert out.shape == (32, 36) and torch.get_num_threads() == before
