"""PSNR and SSIM against hand-computed values and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from n3cli.eval.metrics import gaussian_window, psnr, ssim

SK = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    return a, np.clip(a + rng.normal(0, 0.1, shape), 0, 1)


def test_psnr_hand_values():
    a = np.zeros((8, 8))
    assert psnr(a, a + 0.1) == pytest.approx(10 * math.log10(1 / (0.01 + 1e-10)), abs=1e-9)
    assert psnr(a, a) == pytest.approx(100.0)  # the paper's eps keeps it finite
    b = np.full((4, 4), 100.0)
    assert psnr(b, b + 5, peak=255.0) == pytest.approx(20 * math.log10(255 / 5), abs=1e-6)
    # Unclipped values count: an estimate above 1 is an error like any other.
    assert psnr(np.ones((2, 2)), np.full((2, 2), 1.2)) == pytest.approx(10 * math.log10(25), abs=1e-6)


def test_gaussian_window_is_normalised_11x11():
    w = gaussian_window()
    assert w.shape == (11, 11) and float(w.sum()) == pytest.approx(1.0)
    g = [math.exp(-(x * x) / (2 * 1.5**2)) for x in range(-5, 6)]
    assert float(w[5, 5]) == pytest.approx((1 / sum(g)) ** 2, rel=1e-12)
    assert float(w[0, 5]) == pytest.approx(g[0] / sum(g) ** 2, rel=1e-12)


def test_ssim_valid_matches_skimage():
    a, b = _pair((40, 50))
    assert ssim(a, b, padding="valid") == pytest.approx(structural_similarity(a, b, **SK), abs=1e-12)


def test_ssim_zero_padding_equals_skimage_on_zero_framed_images():
    # Zero padding by the window radius is what the paper's SSIM sees at the borders: on
    # images framed by 5 zero pixels, skimage's valid region is exactly our full map.
    a, b = _pair((33, 27), seed=1)
    ref = structural_similarity(np.pad(a, 5), np.pad(b, 5), **SK)
    assert ssim(a, b, padding="zero") == pytest.approx(ref, abs=1e-12)
    assert ssim(a, b, padding="zero") != pytest.approx(ssim(a, b, padding="valid"), abs=1e-4)


def test_ssim_identity_and_colour_mean():
    a, b = _pair((30, 30, 3), seed=2)
    assert ssim(a, a) == pytest.approx(1.0)
    per_channel = [ssim(a[..., i], b[..., i]) for i in range(3)]
    assert ssim(a, b) == pytest.approx(float(np.mean(per_channel)), abs=1e-12)
    with pytest.raises(ValueError):
        ssim(a, b[:-1])
