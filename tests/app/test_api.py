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
