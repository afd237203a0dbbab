"""Noise-level estimation (``--sigma auto``) on synthetic and (when present) Set12 images."""

from __future__ import annotations

import numpy as np
import pytest

from n3cli.data.estimate import TooSmallError, estimate_sigma, sigma_mad, sigma_weak_texture


def scene(h: int = 96, w: int = 96) -> np.ndarray:
    """A clean test image: gradient, shapes with edges, a patch of fine texture."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = 0.2 + 0.5 * x + 0.1 * y
    img[20:50, 15:45] = 0.8
    img[60:85, 50:90] = 0.15
    img[10:40, 60:90] += 0.1 * np.sin(x[10:40, 60:90] * 120) * np.cos(y[10:40, 60:90] * 90)
    return np.clip(img, 0, 1)


def noisy(img: np.ndarray, sigma: float, seed: int = 0, clip: bool = False) -> np.ndarray:
    y = img + np.random.default_rng(seed).standard_normal(img.shape) * sigma / 255
    return np.round(np.clip(y, 0, 1) * 255) / 255 if clip else y


@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_unclipped_within_10_percent(sigma):
    est = estimate_sigma(noisy(scene(), sigma))
    assert abs(est - sigma) / sigma < 0.10, est


@pytest.mark.parametrize("sigma", [25, 50, 75])
def test_clipped_8bit_corrected_within_10_percent(sigma):
    y = noisy(scene(), sigma, clip=True)
    est = estimate_sigma(y)
    assert abs(est - sigma) / sigma < 0.10, est
    if sigma >= 50:  # clipping removes noise; the correction must win it back
        assert abs(est - sigma) < abs(sigma_weak_texture(y) - sigma)


def test_colour_and_texture_robustness():
    rgb = np.stack([scene(), scene()[::-1], scene()[:, ::-1]], axis=2)
    est = estimate_sigma(noisy(rgb, 20, seed=3))
    assert abs(est - 20) / 20 < 0.10
    # Wavelet MAD is the fallback; on a clean image both stay near zero.
    assert estimate_sigma(scene()) < 2.0 and sigma_mad(scene()) < 5.0


def test_small_images():
    assert estimate_sigma(noisy(np.full((6, 6), 0.5), 25)) > 5  # fallback path, still a number
    with pytest.raises(TooSmallError):
        estimate_sigma(np.zeros((3, 3)))
    with pytest.raises(TooSmallError):
        estimate_sigma(np.zeros((1, 1, 3)))


def test_set12_sigma_25(shared_dir):
    from n3cli.io import read_image

    img = read_image(shared_dir / "datasets" / "Set12" / "05.png").pixels
    est = estimate_sigma(noisy(img.astype(np.float64), 25, clip=True))
    assert abs(est - 25) / 25 < 0.10, est
