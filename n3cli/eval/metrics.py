"""PSNR and SSIM as the paper measured them (spec section 3)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def psnr(clean: np.ndarray, estimate: np.ndarray, peak: float = 1.0, eps: float = 1e-10) -> float:
    """``10 log10(peak^2 / (MSE + eps))`` over all pixels, in float64 (no clipping, no crop).

    With ``peak = 1`` and ``eps = 1e-10`` this is the paper's formula; ``eps`` keeps a
    perfect estimate finite.
    """
    a = np.asarray(clean, dtype=np.float64)
    b = np.asarray(estimate, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return float(10.0 * np.log10(peak * peak / (mse + eps)))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 2-D Gaussian (outer product of the normalised 1-D one), float64."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(clean: np.ndarray, estimate: np.ndarray, data_range: float = 1.0, size: int = 11,
         sigma: float = 1.5, padding: str = "zero") -> float:
    """Mean SSIM of two H x W or H x W x C images (channels averaged).

    ``padding="zero"`` is the paper's measurement (Gaussian filtering with zero padding,
    every pixel's SSIM averaged); ``"valid"`` averages only where the window fits inside
    the image (as scikit-image and KAIR do).
    """
    a = torch.as_tensor(np.asarray(clean, dtype=np.float64))
    b = torch.as_tensor(np.asarray(estimate, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    a, b = a.permute(2, 0, 1)[None], b.permute(2, 0, 1)[None]
    c = a.shape[1]
    win = gaussian_window(size, sigma)[None, None].expand(c, 1, size, size)
    pad = size // 2 if padding == "zero" else 0
    if padding not in ("zero", "valid"):
        raise ValueError("padding must be 'zero' or 'valid'")
    filt = lambda t: F.conv2d(t, win, padding=pad, groups=c)  # noqa: E731
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    smap = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(smap.mean())
